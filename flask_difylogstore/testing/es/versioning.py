"""Write and read versioning parameters, validated as Elasticsearch's ``DocWriteRequest`` validates them.

``version`` / ``version_type`` (``internal``, ``external`` or its alias ``external_gt``,
``external_gte``) and ``if_seq_no`` / ``if_primary_term`` arrive as URL parameters or bulk metadata.
An unknown ``version_type`` is a parse error (the whole request fails); the combinations
``IndexRequest`` / ``DeleteRequest`` / ``UpdateRequest.validate`` refuse are returned as validation
messages, which a request turns into one ``action_request_validation_exception``.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from flask_difylogstore.testing.es.errors import EsError, bad_request

_TYPES = {"internal": "INTERNAL", "external": "EXTERNAL", "external_gt": "EXTERNAL", "external_gte": "EXTERNAL_GTE"}


@dataclass(frozen=True)
class Versioning:
    version: int | None = None
    version_type: str = "internal"  # internal | external | external_gte
    if_seq_no: int | None = None
    if_primary_term: int | None = None

    @property
    def type_name(self) -> str:
        return _TYPES[self.version_type]

    def kwargs(self) -> dict[str, t.Any]:
        """Arguments for :meth:`IndexStore.index` / :meth:`IndexStore.delete`."""
        return {
            "version": self.version,
            "version_type": None if self.version_type == "internal" else self.version_type,
            "if_seq_no": self.if_seq_no,
            "if_primary_term": self.if_primary_term,
        }

    def errors(self, op: str, doc_id: str | None) -> list[str]:
        """The validation messages of ``IndexRequest``/``DeleteRequest``/``UpdateRequest.validate``."""
        out: list[str] = []
        internal = self.version_type == "internal"
        if op == "create":
            if not internal:
                return ["create operations only support internal versioning. use index instead"]
            if self.version is not None:
                return ["create operations do not support explicit versions. use index instead"]
            if self.if_seq_no is not None or self.if_primary_term is not None:
                return ["create operations do not support compare and set. use index instead"]
        if op == "update" and not internal:
            out.append(f"version type [{self.type_name}] is not supported by the update API")
        if op in ("index", "create") and doc_id is None and (not internal or self.version is not None):
            out.append("an id must be provided if version type or value are set")
        if not internal and (self.version is None or self.version < 0):
            shown = -3 if self.version is None else self.version  # Versions.MATCH_ANY
            out.append(f"illegal version value [{shown}] for version type [{self.type_name}]")
        if internal and self.version is not None:
            out.append(
                "internal versioning can not be used for optimistic concurrency control. "
                "Please use `if_seq_no` and `if_primary_term` instead"
            )
        if self.if_seq_no is not None and (not internal or self.version is not None):
            out.append("compare and write operations can not use versioning")
        if self.if_seq_no is not None and self.if_primary_term is None:
            out.append("ifSeqNo is set, but primary term is [0]")
        if self.if_primary_term is not None and self.if_seq_no is None:
            out.append(f"ifSeqNo is unassigned, but primary term is [{self.if_primary_term}]")
        return out

    def validate(self, op: str, doc_id: str | None) -> None:
        problems = self.errors(op, doc_id)
        if problems:
            text = "".join(f"{n}: {e};" for n, e in enumerate(problems, 1))
            raise EsError(400, "action_request_validation_exception", f"Validation Failed: {text}")


def _number(value: t.Any, name: str, where: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise bad_request(f"[{name}] in {where} must be a number, found [{value}]")
    try:
        return int(str(value))
    except ValueError:
        raise bad_request(f"Failed to parse long parameter [{name}] with value [{value}]") from None


def parse_versioning(source: t.Mapping[str, t.Any], where: str) -> Versioning:
    """From URL parameters or bulk metadata; an unknown ``version_type`` fails the request."""
    raw_type = source.get("version_type")
    kind = "internal" if raw_type is None else str(raw_type).lower()
    if kind == "force":
        raise bad_request("version type [force] may no longer be used")
    if kind not in _TYPES:
        raise bad_request(f"No version type match [{raw_type}]")
    if_seq_no = _number(source.get("if_seq_no"), "if_seq_no", where)
    if if_seq_no is not None and if_seq_no < 0:
        raise bad_request(f"sequence numbers must be non negative. got [{if_seq_no}].")
    if_term = _number(source.get("if_primary_term"), "if_primary_term", where)
    if if_term is not None and if_term < 0:
        raise bad_request(f"primary term must be non negative. got [{if_term}]")
    return Versioning(
        version=_number(source.get("version"), "version", where),
        version_type="external" if kind == "external_gt" else kind,
        if_seq_no=if_seq_no,
        if_primary_term=if_term,
    )


def read_conflict(index: str, doc_id: str, current: int, wanted: int) -> EsError:
    """A real-time GET whose ``version`` does not match (``VersionType.isVersionConflictForReads``)."""
    return EsError(
        409,
        "version_conflict_engine_exception",
        f"[{doc_id}]: version conflict, current version [{current}] is different than the one provided [{wanted}]",
        index=index,
    )
