"""Projects, logstores and index configs, and the logs themselves in DuckDB.

Each logstore is one DuckDB table: fixed columns (``__seq__`` ingest order, ``__time__``,
``__time_ns__``, ``__topic__``, ``__source__``, ``__tags__``) plus one VARCHAR column per log key
ever written (named ``k_<hex of the key>`` so any key, in any case, is a distinct column). Decoded
logs are buffered in memory and appended in bulk (:mod:`~flask_difylogstore.testing.sls.ingest`)
before any read. Metadata lives in a JSON document next to the database.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import re
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import duckdb
import orjson

from flask_difylogstore.testing.sls import ingest
from flask_difylogstore.testing.sls.errors import SLSError, bad_request, not_found
from flask_difylogstore.testing.sls.functions import MACROS, SLS_TIME_ZONE
from flask_difylogstore.testing.sls.ingest import quote_ident
from flask_difylogstore.testing.sls.wire import DecodedGroup

_PROJECT_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_LOGSTORE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$")


_OPEN_STORES: weakref.WeakSet[Store] = weakref.WeakSet()


@atexit.register
def _close_open_stores() -> None:
    """Close DuckDB connections still open at exit (persisting buffered logs where there is a file)."""
    for store in list(_OPEN_STORES):
        with contextlib.suppress(Exception):
            store.close(final=True)


class Store:
    """All state of one server; every method is thread-safe (one lock around DuckDB)."""

    def __init__(self, data_dir: str | os.PathLike[str] | None = None) -> None:
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.lock = threading.RLock()
        self._pending: dict[str, ingest.Pending] = {}
        self._columns: dict[str, list[str]] = {}
        self.meta: dict[str, Any] = {"projects": {}}
        self.con: duckdb.DuckDBPyConnection | None = self._connect()
        _OPEN_STORES.add(self)

    @property
    def db(self) -> duckdb.DuckDBPyConnection:
        if self.con is None:
            raise SLSError(503, "ServerBusy", "the server is stopped")
        return self.con

    # --- lifecycle ----------------------------------------------------------------------------
    def _connect(self) -> duckdb.DuckDBPyConnection:
        self._columns = {}
        if self.data_dir is None:
            con = duckdb.connect(":memory:")
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            meta_path = self.data_dir / "meta.json"
            if meta_path.exists():
                self.meta = orjson.loads(meta_path.read_bytes())
            con = duckdb.connect(str(self.data_dir / "logs.duckdb"))
        con.execute(f"SET TimeZone = '{SLS_TIME_ZONE}'")
        con.execute("SET integer_division = true")
        for macro in MACROS:
            con.execute(macro)
        # Queries come from clients: keep them away from files other than the database's own.
        con.execute("SET enable_external_access = false")
        for project in self.meta["projects"].values():
            for ls in project["logstores"].values():
                tbl = quote_ident(ls["_table"])
                con.execute(
                    f"CREATE TABLE IF NOT EXISTS {tbl} (" + ", ".join(f"{c} {t}" for c, t in ingest.FIXED_COLUMNS) + ")"
                )
                row = con.execute(f"SELECT max(__seq__) FROM {tbl}").fetchone()
                stored = row[0] if row and row[0] is not None else -1
                ls["_next_seq"] = max(int(ls.get("_next_seq", 0)), stored + 1)
        return con

    def reopen(self) -> None:
        with self.lock:
            if self.con is None:
                self.con = self._connect()
                _OPEN_STORES.add(self)

    def close(self, *, final: bool = False) -> None:
        """Flush buffered logs; release the database file (persistent stores) or everything (final)."""
        with self.lock:
            if self.con is None:
                return
            self.flush_all()
            if self.data_dir is not None or final:
                self._save_meta()
                if self.data_dir is not None:
                    self.con.execute("CHECKPOINT")
                self.con.close()
                self.con = None
                _OPEN_STORES.discard(self)

    def _save_meta(self) -> None:
        if self.data_dir is None:
            return
        path = self.data_dir / "meta.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(self.meta))
        os.replace(tmp, path)

    # --- projects -----------------------------------------------------------------------------
    def project(self, name: str | None) -> dict[str, Any]:
        project = self.meta["projects"].get(name) if name else None
        if project is None:
            raise not_found("ProjectNotExist", f"The Project does not exist : {name}")
        return project  # type: ignore[no-any-return]

    def create_project(self, name: str, description: str) -> None:
        with self.lock:
            if not _PROJECT_RE.match(name or ""):
                raise bad_request("ProjectNameInvalid", f"project name {name!r} is invalid")
            if name in self.meta["projects"]:
                raise bad_request("ProjectAlreadyExist", f"Project {name} already exist")
            now = int(time.time())
            self.meta["projects"][name] = {
                "projectName": name, "description": description, "status": "Normal",
                "region": "local", "owner": "local", "createTime": str(now),
                "lastModifyTime": str(now), "logstores": {},
            }  # fmt: skip
            self._save_meta()

    def delete_project(self, name: str | None) -> None:
        with self.lock:
            project = self.project(name)
            for ls in list(project["logstores"]):
                self.delete_logstore(name, ls)
            del self.meta["projects"][name]
            self._save_meta()

    def update_project(self, name: str | None, description: Any) -> None:
        with self.lock:
            project = self.project(name)
            if description is not None:
                project["description"] = str(description)
            project["lastModifyTime"] = str(int(time.time()))
            self._save_meta()

    def project_info(self, name: str | None) -> dict[str, Any]:
        with self.lock:
            return {k: v for k, v in self.project(name).items() if k != "logstores"}

    def list_projects(self) -> list[dict[str, Any]]:
        with self.lock:
            return [{k: v for k, v in p.items() if k != "logstores"} for p in self.meta["projects"].values()]

    # --- logstores ----------------------------------------------------------------------------
    def logstore(self, project: str | None, name: str) -> dict[str, Any]:
        ls = self.project(project)["logstores"].get(name)
        if ls is None:
            raise not_found("LogStoreNotExist", f"logstore {name} does not exist")
        return ls  # type: ignore[no-any-return]

    def create_logstore(self, project: str | None, body: dict[str, Any]) -> None:
        with self.lock:
            proj = self.project(project)
            name = str(body.get("logstoreName", ""))
            if not _LOGSTORE_RE.match(name):
                raise bad_request("LogStoreInfoInvalid", f"logstore name {name!r} is invalid")
            if name in proj["logstores"]:
                raise bad_request("LogStoreAlreadyExist", f"logstore {name} already exists")
            now = int(time.time())
            record: dict[str, Any] = {
                "logstoreName": name, "ttl": int(body.get("ttl", 30)),
                "shardCount": int(body.get("shardCount", 2)),
                "enable_tracking": bool(body.get("enable_tracking", False)),
                "autoSplit": bool(body.get("autoSplit", True)),
                "maxSplitShard": int(body.get("maxSplitShard", 64)),
                "appendMeta": bool(body.get("appendMeta", False)),
                "telemetryType": body.get("telemetryType", ""), "mode": body.get("mode", "standard"),
                "createTime": now, "lastModifyTime": now,
                "_table": "t_" + hashlib.sha1(f"{project}\0{name}".encode()).hexdigest()[:24],
                "_index": None, "_index_since": 0, "_key_since": {}, "_next_seq": 0,
            }  # fmt: skip
            for optional in ("hot_ttl", "infrequentAccessTTL", "enableModify", "encrypt_conf"):
                if optional in body:
                    record[optional] = body[optional]
            tbl = quote_ident(record["_table"])
            self._columns.pop(record["_table"], None)
            self.db.execute(f"DROP TABLE IF EXISTS {tbl}")
            self.db.execute(f"CREATE TABLE {tbl} (" + ", ".join(f"{c} {t}" for c, t in ingest.FIXED_COLUMNS) + ")")
            proj["logstores"][name] = record
            self._save_meta()

    def update_logstore(self, project: str | None, name: str, body: dict[str, Any]) -> None:
        with self.lock:
            ls = self.logstore(project, name)
            for key in ("ttl", "shardCount", "maxSplitShard", "hot_ttl", "infrequentAccessTTL"):
                if key in body and body[key] is not None:
                    ls[key] = int(body[key])
            for key in (
                "enable_tracking",
                "autoSplit",
                "appendMeta",
                "enableModify",
                "telemetryType",
                "mode",
            ):
                if key in body and body[key] is not None:
                    ls[key] = body[key]
            ls["lastModifyTime"] = int(time.time())
            self._save_meta()

    def delete_logstore(self, project: str | None, name: str) -> None:
        with self.lock:
            ls = self.logstore(project, name)
            self._pending.pop(ls["_table"], None)
            self._columns.pop(ls["_table"], None)
            self.db.execute(f"DROP TABLE IF EXISTS {quote_ident(ls['_table'])}")
            del self.project(project)["logstores"][name]
            self._save_meta()

    def logstore_info(self, project: str | None, name: str) -> dict[str, Any]:
        with self.lock:
            return {k: v for k, v in self.logstore(project, name).items() if not k.startswith("_")}

    def list_logstores(self, project: str | None, pattern: str | None = None) -> list[str]:
        with self.lock:
            names = sorted(self.project(project)["logstores"])
            return [n for n in names if not pattern or pattern in n]

    # --- index --------------------------------------------------------------------------------
    def set_index(self, project: str | None, name: str, config: dict[str, Any], *, create: bool) -> None:
        with self.lock:
            ls = self.logstore(project, name)
            old = ls["_index"]
            if create and old is not None:
                raise bad_request("IndexAlreadyExist", f"index of logstore {name} already exists")
            if not create and old is None:
                raise not_found("IndexConfigNotExist", f"index config of logstore {name} does not exist")
            if not isinstance(config, dict) or ("line" not in config and "keys" not in config):
                raise bad_request("InvalidIndexConfig", "index config needs a line or a keys section")
            for key, key_conf in (config.get("keys") or {}).items():
                if key_conf.get("type", "text") not in ("text", "long", "double", "json"):
                    raise bad_request("InvalidIndexConfig", f"unsupported index type for key {key}")
            seq = ls["_next_seq"]
            if old is None:
                ls["_index_since"] = seq
                ls["_key_since"] = {}
            old_keys = (old or {}).get("keys") or {}
            key_since: dict[str, int] = {}
            for key, key_conf in (config.get("keys") or {}).items():
                previous = old_keys.get(key)
                same = previous is not None and previous.get("type", "text") == key_conf.get("type", "text")
                key_since[key] = ls["_key_since"].get(key, seq) if same else seq
            ls["_key_since"] = key_since
            stored = dict(config)
            stored["lastModifyTime"] = int(time.time())
            ls["_index"] = stored
            self._save_meta()

    def get_index(self, project: str | None, name: str) -> dict[str, Any]:
        with self.lock:
            ls = self.logstore(project, name)
            if ls["_index"] is None:
                raise not_found("IndexConfigNotExist", f"index config of logstore {name} does not exist")
            return dict(ls["_index"])

    def delete_index(self, project: str | None, name: str) -> None:
        with self.lock:
            ls = self.logstore(project, name)
            if ls["_index"] is None:
                raise not_found("IndexConfigNotExist", f"index config of logstore {name} does not exist")
            ls["_index"] = None
            ls["_key_since"] = {}
            self._save_meta()

    # --- writes -------------------------------------------------------------------------------
    def append(self, project: str | None, name: str, group: DecodedGroup) -> None:
        """Accept one decoded LogGroup; it becomes visible to every later read."""
        with self.lock:
            ls = self.logstore(project, name)
            seq = ls["_next_seq"]
            ls["_next_seq"] = seq + len(group.rows)
            pending = self._pending.setdefault(ls["_table"], ingest.Pending())
            pending.groups.append((seq, group))
            pending.rows += len(group.rows)
            pending.bytes += group.raw_size
            if pending.full:
                self._flush(ls["_table"])

    def flush_all(self) -> None:
        with self.lock:
            for table in list(self._pending):
                self._flush(table)

    def flush_table(self, table: str) -> None:
        with self.lock:
            self._flush(table)

    def table_columns(self, table: str) -> list[str]:
        """Column names of a logstore table (cached: the catalog lookup costs a millisecond)."""
        cols = self._columns.get(table)
        if cols is None:
            rows = self.db.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = ? AND NOT internal", [table]
            ).fetchall()
            cols = self._columns[table] = [r[0] for r in rows]
        return list(cols)

    def _flush(self, table: str) -> None:
        pending = self._pending.pop(table, None)
        if pending is None or not pending.rows:
            return
        added = ingest.insert(self.db, table, pending, self.table_columns(table))
        if added:
            self._columns.setdefault(table, []).extend(added)
