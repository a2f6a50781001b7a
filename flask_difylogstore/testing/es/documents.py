"""One index's document store: versioning, sequence numbers and near-real-time refresh.

Writes go to ``live`` (what GET by id sees, real-time) and to ``pending``; a refresh moves the
pending changes into ``view`` (what search sees). Refresh cost is proportional to the changes only.
A delete leaves its version behind for ``index.gc_deletes`` (60 s), as Elasticsearch does: within
that time an older external version cannot bring the document back; after it, it can.
"""

from __future__ import annotations

import copy
import time
import typing as t
import uuid

from flask_difylogstore.testing.es.errors import EsError, version_conflict
from flask_difylogstore.testing.es.mapping import Flat, Mapping

SHARDS = {"total": 2, "successful": 1, "failed": 0}


class StoredDoc:
    """A document version; never mutated once stored, so search snapshots stay consistent."""

    __slots__ = ("flat", "id", "ord", "primary_term", "seq_no", "source", "version")

    def __init__(self, doc_id: str, source: dict[str, t.Any], flat: Flat, version: int, seq_no: int) -> None:
        self.id = doc_id
        self.source = source
        self.flat = flat
        self.version = version
        self.seq_no = seq_no
        self.primary_term = 1
        self.ord = 0


def deep_merge(base: dict[str, t.Any], extra: dict[str, t.Any]) -> dict[str, t.Any]:
    """Partial-update merge: nested objects merge, everything else is replaced."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


class IndexStore:
    """Documents, settings, mapping and aliases of one index."""

    def __init__(
        self,
        name: str,
        settings: dict[str, str],
        mapping: Mapping,
        aliases: dict[str, dict[str, t.Any]] | None = None,
        created_ms: int | None = None,
    ) -> None:
        self.name = name
        self.uuid = uuid.uuid4().hex[:22]
        self.settings = settings
        self.mapping = mapping
        self.aliases: dict[str, dict[str, t.Any]] = aliases or {}
        self.closed = False
        self.created_ms = created_ms if created_ms is not None else int(time.time() * 1000)
        self.settings.setdefault("index.creation_date", str(self.created_ms))
        self.settings.setdefault("index.uuid", self.uuid)
        self.live: dict[str, StoredDoc] = {}
        self.tombstones: dict[str, int] = {}
        self.deleted_at: dict[str, float] = {}
        self.refreshes = 0
        self.refresh_listeners = 0
        self.pending: dict[str, StoredDoc | None] = {}
        self.view: dict[str, StoredDoc] = {}
        self.seq_no = -1
        self.next_ord = 0
        self.last_refresh = time.monotonic()
        self.apply_settings()

    def apply_settings(self) -> None:
        self.mapping.field_limit = int(self.settings.get("index.mapping.total_fields.limit", "1000"))
        self.max_result_window = int(self.settings.get("index.max_result_window", "10000"))
        raw = self.settings.get("index.refresh_interval")
        self.refresh_interval: float | None = None if raw is None else _interval_seconds(raw)
        self.gc_deletes = max(0.0, _interval_seconds(self.settings.get("index.gc_deletes", "60s"), "index.gc_deletes"))
        self.max_refresh_listeners = int(self.settings.get("index.max_refresh_listeners", "1000"))

    # ---- writes -------------------------------------------------------------------------------
    def _check(
        self,
        doc_id: str,
        current: StoredDoc | None,
        version: int | None,
        version_type: str | None,
        if_seq_no: int | None,
        if_primary_term: int | None,
    ) -> int:
        """Concurrency control; returns the version the write will get."""
        if if_seq_no is not None or if_primary_term is not None:
            if current is None:
                raise version_conflict(
                    self.name,
                    doc_id,
                    f"version conflict, required seqNo [{if_seq_no}], primary term [{if_primary_term}]. "
                    "but no document was found",
                )
            if current.seq_no != if_seq_no or (if_primary_term is not None and if_primary_term != 1):
                raise version_conflict(
                    self.name,
                    doc_id,
                    f"version conflict, required seqNo [{if_seq_no}], primary term [{if_primary_term}]. "
                    f"current document has seqNo [{current.seq_no}] and primary term [1]",
                )
        previous = current.version if current is not None else self.deleted_version(doc_id)
        if version_type in ("external", "external_gte"):
            if version is None:
                raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: version is missing;")
            if previous is not None:
                stale = version <= previous if version_type == "external" else version < previous
                if stale:
                    word = "higher or equal to" if version_type == "external" else "higher than"
                    raise version_conflict(
                        self.name,
                        doc_id,
                        f"version conflict, current version [{previous}] is {word} the one provided [{version}]",
                    )
            return version
        if version is not None:
            raise EsError(
                400,
                "action_request_validation_exception",
                "Validation Failed: 1: internal versioning can not be used for optimistic concurrency "
                "control. Please use `if_seq_no` and `if_primary_term` instead;",
            )
        return 1 if previous is None else previous + 1

    def _store(self, doc_id: str, source: dict[str, t.Any], flat: Flat, version: int) -> StoredDoc:
        self.seq_no += 1
        doc = StoredDoc(doc_id, source, flat, version, self.seq_no)
        self.live[doc_id] = doc
        self.pending[doc_id] = doc
        if self.tombstones:
            self.tombstones.pop(doc_id, None)
            self.deleted_at.pop(doc_id, None)
        return doc

    def deleted_version(self, doc_id: str, now: float | None = None) -> int | None:
        """The version of a delete of ``doc_id`` still remembered (within ``index.gc_deletes``)."""
        version = self.tombstones.get(doc_id)
        if version is None:
            return None
        at = self.deleted_at.get(doc_id)
        if at is not None and (time.time() if now is None else now) - at > self.gc_deletes:
            del self.tombstones[doc_id]
            del self.deleted_at[doc_id]
            return None
        return version

    def forget_deletes(self, now: float | None = None) -> None:
        """Drop the delete versions older than ``index.gc_deletes`` (Elasticsearch prunes them too)."""
        now = time.time() if now is None else now
        for doc_id in [d for d, at in self.deleted_at.items() if now - at > self.gc_deletes]:
            self.deleted_version(doc_id, now)

    def result(self, doc_id: str, version: int, seq_no: int, result: str) -> dict[str, t.Any]:
        return {
            "_index": self.name,
            "_id": doc_id,
            "_version": version,
            "result": result,
            "_shards": SHARDS,
            "_seq_no": seq_no,
            "_primary_term": 1,
        }

    def index(
        self,
        doc_id: str,
        source: dict[str, t.Any],
        *,
        op_type: str = "index",
        version: int | None = None,
        version_type: str | None = None,
        if_seq_no: int | None = None,
        if_primary_term: int | None = None,
    ) -> tuple[int, dict[str, t.Any]]:
        """Index or create; returns (HTTP status, response body)."""
        current = self.live.get(doc_id)
        if op_type == "create" and current is not None:
            raise version_conflict(
                self.name,
                doc_id,
                f"version conflict, document already exists (current version [{current.version}])",
            )
        new_version = self._check(doc_id, current, version, version_type, if_seq_no, if_primary_term)
        flat = self.mapping.index_document(source, doc_id)
        doc = self._store(doc_id, source, flat, new_version)
        created = current is None
        return (201 if created else 200), self.result(
            doc_id, doc.version, doc.seq_no, "created" if created else "updated"
        )

    def delete(
        self,
        doc_id: str,
        *,
        version: int | None = None,
        version_type: str | None = None,
        if_seq_no: int | None = None,
        if_primary_term: int | None = None,
    ) -> tuple[int, dict[str, t.Any]]:
        current = self.live.get(doc_id)
        new_version = self._check(doc_id, current, version, version_type, if_seq_no, if_primary_term)
        self.seq_no += 1
        self.tombstones[doc_id] = new_version
        self.deleted_at[doc_id] = time.time()
        if current is None:
            return 404, self.result(doc_id, new_version, self.seq_no, "not_found")
        del self.live[doc_id]
        self.pending[doc_id] = None
        return 200, self.result(doc_id, new_version, self.seq_no, "deleted")

    def update(
        self,
        doc_id: str,
        body: dict[str, t.Any],
        *,
        if_seq_no: int | None = None,
        if_primary_term: int | None = None,
    ) -> tuple[int, dict[str, t.Any]]:
        """Partial update (``doc``), ``doc_as_upsert``, ``upsert`` and the simple scripts of ``script.py``."""
        from flask_difylogstore.testing.es.script import run_script

        current = self.live.get(doc_id)
        if current is None:
            if body.get("doc_as_upsert") and "doc" in body:
                return self.index(doc_id, copy.deepcopy(body["doc"]), op_type="create")
            if "upsert" in body:
                source = copy.deepcopy(body["upsert"])
                if "script" in body and body.get("scripted_upsert"):
                    source = run_script(body["script"], source)
                return self.index(doc_id, source, op_type="create")
            raise EsError(404, "document_missing_exception", f"[{doc_id}]: document missing", index=self.name)
        self._check(doc_id, current, None, None, if_seq_no, if_primary_term)
        if "doc" in body:
            merged = deep_merge(current.source, body["doc"])
        elif "script" in body:
            merged = run_script(body["script"], copy.deepcopy(current.source))
        else:
            raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: script or doc is missing;")
        if merged == current.source and body.get("detect_noop", True):
            return 200, self.result(doc_id, current.version, current.seq_no, "noop")
        flat = self.mapping.index_document(merged, doc_id)
        doc = self._store(doc_id, merged, flat, current.version + 1)
        return 200, self.result(doc_id, doc.version, doc.seq_no, "updated")

    # ---- refresh ------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Publish pending changes to search, incrementally."""
        if self.pending:
            view = self.view
            for doc_id, doc in self.pending.items():
                if doc is None:
                    view.pop(doc_id, None)
                else:
                    old = view.get(doc_id)
                    if old is None:
                        doc.ord = self.next_ord
                        self.next_ord += 1
                    else:
                        doc.ord = old.ord
                    view[doc_id] = doc
            self.pending = {}
        self.last_refresh = time.monotonic()
        self.refreshes += 1

    def due(self, default_interval: float, now: float) -> bool:
        interval = default_interval if self.refresh_interval is None else self.refresh_interval
        return bool(self.pending) and interval >= 0 and now - self.last_refresh >= interval

    def store_size(self) -> int:
        return sum(64 + len(str(d.source)) for d in self.live.values())


def _interval_seconds(raw: str, setting: str = "index.refresh_interval") -> float:
    raw = str(raw).strip()
    if raw == "-1":
        return -1.0
    for suffix, factor in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if raw.endswith(suffix) and raw[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(raw[: -len(suffix)]) * factor
    try:
        return float(raw) / 1000
    except ValueError:
        raise EsError(
            400,
            "illegal_argument_exception",
            f"failed to parse setting [{setting}] with value [{raw}]",
        ) from None
