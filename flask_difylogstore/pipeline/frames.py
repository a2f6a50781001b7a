"""The spool's frame format: ``magic | length | crc32 | payload``.

The header lets a reader tell a torn tail (the process died mid-append) or a damaged region from
data, skip it and resynchronise on the next frame.
"""

from __future__ import annotations

import struct
import zlib

MAGIC = b"\xd1\xf7"
HEADER = struct.Struct(">2sII")
MAX_FRAME = 256 * 1024 * 1024
_CRC_PIECE = 4096


def encode_frame(payload: bytes) -> bytes:
    """One frame: magic, payload length, CRC-32 of the payload, payload."""
    return frame_header(payload) + payload


def frame_header(payload: bytes) -> bytes:
    """The header of ``payload``'s frame (appended with the payload after it, no copy joins them)."""
    return HEADER.pack(MAGIC, len(payload), crc32(payload))


def crc32(data: bytes) -> int:
    """CRC-32 of ``data``, computed in pieces that keep the GIL.

    ``zlib.crc32`` releases the GIL for inputs over 5 KiB; a saving thread then has to win the
    GIL back from whichever thread took it, which with a busy writer thread costs up to the
    interpreter's switch interval (5 ms) per save. Releasing saves nothing for a few kilobytes.
    """
    if len(data) <= _CRC_PIECE:
        return zlib.crc32(data)
    view = memoryview(data)
    crc = 0
    for start in range(0, len(view), _CRC_PIECE):
        crc = zlib.crc32(view[start : start + _CRC_PIECE], crc)
    return crc


def decode_frames(data: bytes, *, at_eof: bool) -> tuple[list[bytes], int, int]:
    """Complete, valid frames in ``data``; returns ``(payloads, bytes consumed, bytes skipped)``.

    Damaged bytes are skipped up to the next frame that checks out. An incomplete frame at the end
    is left unconsumed unless ``at_eof`` (then it is a torn tail and counted as skipped).
    """
    payloads: list[bytes] = []
    pos = skipped = 0
    end = len(data)
    while pos < end:
        if end - pos < HEADER.size:
            break
        magic, length, crc = HEADER.unpack_from(data, pos)
        if magic != MAGIC or length > MAX_FRAME:
            nxt = data.find(MAGIC, pos + 1)
            nxt = end if nxt < 0 else nxt
            skipped += _damaged(data, pos, nxt)
            pos = nxt
            continue
        stop = pos + HEADER.size + length
        if stop > end:
            break
        payload = data[pos + HEADER.size : stop]
        if crc32(payload) != crc:
            nxt = data.find(MAGIC, pos + 1)
            nxt = end if nxt < 0 else nxt
            skipped += _damaged(data, pos, nxt)
            pos = nxt
            continue
        payloads.append(payload)
        pos = stop
    if at_eof and pos < end:
        skipped += _damaged(data, pos, end)
        pos = end
    return payloads, pos, skipped


def _damaged(data: bytes, start: int, stop: int) -> int:
    """Bytes of ``data[start:stop]`` that are not zero padding (the allocated, unwritten tail)."""
    region = data[start:stop]
    return len(region.rstrip(b"\0"))
