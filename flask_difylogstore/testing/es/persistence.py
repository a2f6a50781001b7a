"""Snapshots of the local Elasticsearch server on disk: ``state.json`` plus one NDJSON file per index.

Written on ``stop()`` and read on ``start()`` when the server has a ``data_dir``, so a restarted
server comes back with its indices, templates, policies, sequence numbers and remembered deletes.
"""

from __future__ import annotations

import os
import time
import typing as t
from pathlib import Path

import orjson

from flask_difylogstore.testing.es.documents import IndexStore, StoredDoc
from flask_difylogstore.testing.es.mapping import Mapping


class ClusterState(t.Protocol):
    """The parts of ``indices.Cluster`` a snapshot holds; declared here so this module never imports it."""

    indices: dict[str, IndexStore]
    index_templates: dict[str, dict[str, t.Any]]
    component_templates: dict[str, dict[str, t.Any]]
    ilm: dict[str, dict[str, t.Any]]
    error_type: str


def save(cluster: ClusterState, directory: Path) -> None:
    """Write every index (documents as NDJSON, written aside and renamed) and then ``state.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    meta: dict[str, t.Any] = {
        "index_templates": cluster.index_templates,
        "component_templates": cluster.component_templates,
        "ilm": cluster.ilm,
        "indices": {},
    }
    for name, store in cluster.indices.items():
        meta["indices"][name] = {
            "settings": store.settings,
            "mappings": store.mapping.body,
            "aliases": store.aliases,
            "created_ms": store.created_ms,
            "seq_no": store.seq_no,
            "tombstones": store.tombstones,
            "deleted_at": store.deleted_at,
            "closed": store.closed,
        }
        tmp = directory / f"{name}.ndjson.tmp"
        with tmp.open("wb") as fh:
            for doc in store.live.values():
                fh.write(orjson.dumps([doc.id, doc.version, doc.seq_no, doc.source]) + b"\n")
        os.replace(tmp, directory / f"{name}.ndjson")
    for stale in directory.glob("*.ndjson"):
        if stale.stem not in cluster.indices:
            stale.unlink()
    (directory / "state.json.tmp").write_bytes(orjson.dumps(meta))
    os.replace(directory / "state.json.tmp", directory / "state.json")


def load(cluster: ClusterState, directory: Path) -> None:
    """Rebuild the cluster from a snapshot; every document is searchable again at once."""
    state = directory / "state.json"
    if not state.exists():
        return
    meta = orjson.loads(state.read_bytes())
    cluster.index_templates = meta["index_templates"]
    cluster.component_templates = meta["component_templates"]
    cluster.ilm = meta["ilm"]
    cluster.indices = {}
    for name, info in meta["indices"].items():
        mapping = Mapping(info["mappings"], error_type=cluster.error_type)
        store = IndexStore(name, info["settings"], mapping, info["aliases"], info["created_ms"])
        store.uuid = store.settings.get("index.uuid", store.uuid)
        store.seq_no = info["seq_no"]
        store.closed = bool(info.get("closed", False))
        store.tombstones = info["tombstones"]
        # Snapshots written before delete times were kept: count their deletes from now.
        store.deleted_at = info.get("deleted_at") or dict.fromkeys(store.tombstones, time.time())
        path = directory / f"{name}.ndjson"
        if path.exists():
            with path.open("rb") as fh:
                for line in fh:
                    doc_id, version, seq_no, source = orjson.loads(line)
                    doc = StoredDoc(doc_id, source, mapping.index_document(source, doc_id), version, seq_no)
                    store.live[doc_id] = doc
                    store.pending[doc_id] = doc
        store.refresh()
        cluster.indices[name] = store
