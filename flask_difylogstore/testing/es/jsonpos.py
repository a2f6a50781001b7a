"""Token positions in a raw JSON body, for the ``line`` / ``col`` Elasticsearch puts on parse errors.

Jackson reports 1-based lines and 1-based byte columns of the token an error is about: the opening
quote of a field name, or the first byte of a value. Only the top level of an object is scanned.
"""

from __future__ import annotations

Position = tuple[int, int]
_WS = b" \t\r\n"


class _Scanner:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.i = 0
        self.line = 1
        self.row_start = 0

    def pos(self) -> Position:
        return self.line, self.i - self.row_start + 1

    def skip_ws(self) -> None:
        while self.i < len(self.raw) and self.raw[self.i] in _WS:
            if self.raw[self.i] == 0x0A:
                self.line += 1
                self.row_start = self.i + 1
            self.i += 1

    def string(self) -> str:
        start = self.i
        self.i += 1
        while self.i < len(self.raw) and self.raw[self.i] != 0x22:
            self.i += 2 if self.raw[self.i] == 0x5C else 1
        self.i += 1
        return self.raw[start + 1 : self.i - 1].decode("utf-8", "replace")

    def value(self) -> None:
        depth = 0
        while self.i < len(self.raw):
            ch = self.raw[self.i]
            if ch == 0x22:
                self.string()
                if depth == 0:
                    return
                continue
            if ch in b"{[":
                depth += 1
            elif ch in b"}]":
                if depth == 0:
                    return
                depth -= 1
                if depth == 0:
                    self.i += 1
                    return
            elif ch == 0x2C and depth == 0:
                return
            elif ch == 0x0A:
                self.line += 1
                self.row_start = self.i + 1
            self.i += 1


def top_level(raw: bytes) -> dict[str, tuple[Position, Position]]:
    """Each top-level key's (key position, value position); empty when ``raw`` is not a JSON object."""
    scan = _Scanner(raw)
    out: dict[str, tuple[Position, Position]] = {}
    scan.skip_ws()
    if scan.i >= len(raw) or raw[scan.i] != 0x7B:
        return out
    scan.i += 1
    while True:
        scan.skip_ws()
        if scan.i >= len(raw) or raw[scan.i] != 0x22:
            return out
        key_pos = scan.pos()
        key = scan.string()
        scan.skip_ws()
        if scan.i >= len(raw) or raw[scan.i] != 0x3A:
            return out
        scan.i += 1
        scan.skip_ws()
        out.setdefault(key, (key_pos, scan.pos()))
        scan.value()
        scan.skip_ws()
        if scan.i >= len(raw) or raw[scan.i] != 0x2C:
            return out
        scan.i += 1


def key_positions(raw: bytes) -> dict[tuple[str | int, ...], Position]:
    """The position of every field name in ``raw``, by its path (array items by index)."""
    scan = _Scanner(raw)
    out: dict[tuple[str | int, ...], Position] = {}

    def value(path: tuple[str | int, ...]) -> None:
        scan.skip_ws()
        if scan.i >= len(raw):
            return
        ch = raw[scan.i]
        if ch == 0x7B:  # {
            scan.i += 1
            while True:
                scan.skip_ws()
                if scan.i >= len(raw) or raw[scan.i] != 0x22:
                    scan.i += 1 if scan.i < len(raw) and raw[scan.i] == 0x7D else 0
                    return
                where = scan.pos()
                key = scan.string()
                out.setdefault((*path, key), where)
                scan.skip_ws()
                scan.i += 1  # :
                value((*path, key))
                scan.skip_ws()
                if scan.i < len(raw) and raw[scan.i] == 0x2C:
                    scan.i += 1
                    continue
                scan.i += 1  # }
                return
        elif ch == 0x5B:  # [
            scan.i += 1
            n = 0
            while True:
                scan.skip_ws()
                if scan.i < len(raw) and raw[scan.i] == 0x5D:
                    scan.i += 1
                    return
                value((*path, n))
                n += 1
                scan.skip_ws()
                if scan.i < len(raw) and raw[scan.i] == 0x2C:
                    scan.i += 1
                    continue
                scan.i += 1  # ]
                return
        elif ch == 0x22:
            scan.string()
        else:
            while scan.i < len(raw) and raw[scan.i] not in b",}] \t\r\n":
                scan.i += 1

    value(())
    return out
