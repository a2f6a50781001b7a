"""Cluster state: indices, aliases, index/component templates, ILM policies and persistence."""

from __future__ import annotations

import copy
import fnmatch
import re
import threading
import time
import typing as t
from pathlib import Path

from flask_difylogstore.testing.es import persistence
from flask_difylogstore.testing.es.datemath import parse_duration_ms
from flask_difylogstore.testing.es.documents import IndexStore
from flask_difylogstore.testing.es.errors import EsError, bad_request, index_not_found
from flask_difylogstore.testing.es.mapping import Mapping
from flask_difylogstore.testing.es.settings_check import check_settings, flatten_settings, nest_settings
from flask_difylogstore.testing.es.template_merge import override_mapping

__all__ = ["Cluster", "flatten_settings", "nest_settings"]

_BAD_CHARS = re.compile(r'[\\/*?"<>| ,#:]')


class Cluster:
    """All state behind the HTTP API; every public method is called with ``lock`` held."""

    def __init__(self, *, error_type: str, default_refresh: float) -> None:
        self.lock = threading.RLock()
        #: Notified (with ``lock`` held) after refreshes, for requests waiting with ``refresh=wait_for``.
        self.refreshed = threading.Condition(self.lock)
        self.closing = False
        self._last_gc = 0.0
        self.indices: dict[str, IndexStore] = {}
        self.index_templates: dict[str, dict[str, t.Any]] = {}
        self.component_templates: dict[str, dict[str, t.Any]] = {}
        self.ilm: dict[str, dict[str, t.Any]] = {}
        self.error_type = error_type
        self.default_refresh = default_refresh

    # ---- names --------------------------------------------------------------------------------
    def alias_map(self) -> dict[str, list[IndexStore]]:
        out: dict[str, list[IndexStore]] = {}
        for store in self.indices.values():
            for alias in store.aliases:
                out.setdefault(alias, []).append(store)
        return out

    def resolve(
        self,
        expr: str | None,
        *,
        ignore_unavailable: bool = False,
        allow_no_indices: bool = True,
        allow_closed: bool = True,
        expand_wildcards: str = "open",
    ) -> list[IndexStore]:
        """Comma lists, wildcards, aliases, ``_all``, ``-excluded`` → concrete indices.

        Wildcards expand to open indices (``expand_wildcards``: ``closed``/``all`` add closed ones); a
        closed index named explicitly is an ``index_closed_exception`` where ``allow_closed`` is false
        (searches, reads and writes), unless ``ignore_unavailable``.
        """
        states = {w.strip() for w in expand_wildcards.split(",")}
        unknown = states - {"open", "closed", "hidden", "none", "all"}
        if unknown:
            state = sorted(unknown)[0].upper()
            raise bad_request(
                f"No enum constant org.elasticsearch.action.support.IndicesOptions.WildcardStates.{state}"
            )
        want_closed = bool(states & {"closed", "all"})
        want_open = bool(states & {"open", "all"})
        if not expr or expr in ("_all", "*"):
            return [s for s in self.indices.values() if (want_closed if s.closed else want_open)]
        chosen = self._resolve_names(expr, ignore_unavailable, allow_no_indices, want_open, want_closed)
        if allow_closed:
            return chosen
        out = []
        for store in chosen:
            if store.closed:
                if ignore_unavailable:
                    continue
                raise EsError(400, "index_closed_exception", "closed", index=store.name)
            out.append(store)
        return out

    def _resolve_names(
        self, expr: str, ignore_unavailable: bool, allow_no_indices: bool, want_open: bool, want_closed: bool
    ) -> list[IndexStore]:
        aliases = self.alias_map()
        chosen: dict[str, IndexStore] = {}
        for part in expr.split(","):
            part = part.strip()
            if part.startswith("-") and chosen:
                for name in [n for n in chosen if fnmatch.fnmatchcase(n, part[1:])]:
                    del chosen[name]
                continue
            if "*" in part or "?" in part:
                found = [
                    s
                    for n, s in self.indices.items()
                    if fnmatch.fnmatchcase(n, part) and (want_closed if s.closed else want_open)
                ]
                found += [s for a, ss in aliases.items() if fnmatch.fnmatchcase(a, part) for s in ss]
                if not found and not allow_no_indices:
                    raise index_not_found(part)
            elif part in self.indices:
                found = [self.indices[part]]
            elif part in aliases:
                found = aliases[part]
            elif ignore_unavailable:
                found = []
            else:
                raise index_not_found(part)
            for store in found:
                chosen[store.name] = store
        return list(chosen.values())

    def alias_filters(self, expr: str | None) -> dict[str, t.Any]:
        """Index name → the alias ``filter`` a search through ``expr`` must apply to it.

        An index also reached directly, through a wildcard or through an alias without a filter
        is searched unfiltered, as in Elasticsearch.
        """
        if not expr or expr in ("_all", "*"):
            return {}
        aliases = self.alias_map()
        filters: dict[str, list[t.Any]] = {}
        unfiltered: set[str] = set()
        for part in (p.strip() for p in expr.split(",")):
            if part in aliases and "*" not in part:
                for store in aliases[part]:
                    found = store.aliases[part].get("filter")
                    if found:
                        filters.setdefault(store.name, []).append(found)
                    else:
                        unfiltered.add(store.name)
            else:
                unfiltered.update(s.name for s in self.resolve(part, ignore_unavailable=True))
        return {
            name: fs[0] if len(fs) == 1 else {"bool": {"should": fs, "minimum_should_match": 1}}
            for name, fs in filters.items()
            if name not in unfiltered
        }

    def write_target(self, name: str, *, auto_create: bool = True) -> IndexStore:
        """Where a write to ``name`` goes: the index, an alias's write index, or a new index."""
        store = self.indices.get(name)
        if store is not None:
            if store.closed:
                raise EsError(400, "index_closed_exception", "closed", index=name)
            return store
        members = self.alias_map().get(name)
        if members:
            writers = [s for s in members if s.aliases[name].get("is_write_index")]
            if not writers and len(members) == 1 and members[0].aliases[name].get("is_write_index") is not False:
                writers = members
            if writers:
                if writers[0].closed:
                    raise EsError(400, "index_closed_exception", "closed", index=writers[0].name)
                return writers[0]
            raise bad_request(
                f"no write index is defined for alias [{name}]. The write index may be explicitly "
                "disabled using is_write_index=false or the alias points to multiple indices without one "
                "being designated as a write index"
            )
        if not auto_create:
            raise index_not_found(name)
        return self.create_index(name, {})

    # ---- indices ------------------------------------------------------------------------------
    def _validate_name(self, name: str) -> None:
        problem = None
        if name != name.lower():
            problem = "must be lowercase"
        elif _BAD_CHARS.search(name):
            problem = 'must not contain the following characters [ , ", *, \\, <, |, ,, >, /, ?]'
        elif name[:1] in ("-", "_", "+"):
            problem = "must not start with '_', '-', or '+'"
        elif name in (".", ".."):
            problem = "must not be '.' or '..'"
        if problem:
            raise EsError(400, "invalid_index_name_exception", f"Invalid index name [{name}], {problem}", index=name)
        if name in self.indices:
            raise EsError(
                400,
                "resource_already_exists_exception",
                f"index [{name}/{self.indices[name].uuid}] already exists",
                index=name,
            )
        if name in self.alias_map():
            raise EsError(400, "invalid_index_name_exception", f"Invalid index name [{name}], already exists as alias")

    def matching_template(self, name: str) -> tuple[str, dict[str, t.Any]] | None:
        best: tuple[int, str, dict[str, t.Any]] | None = None
        for tname, body in self.index_templates.items():
            patterns = body.get("index_patterns") or []
            if isinstance(patterns, str):
                patterns = [patterns]
            if any(fnmatch.fnmatchcase(name, p) for p in patterns):
                prio = int(body.get("priority", 0))
                if best is None or prio > best[0]:
                    best = (prio, tname, body)
        return None if best is None else (best[1], best[2])

    def composed(self, body: dict[str, t.Any]) -> dict[str, t.Any]:
        """Merge a template's component templates and its own ``template`` section."""
        settings: dict[str, str] = {}
        mappings: dict[str, t.Any] = {"properties": {}}
        aliases: dict[str, t.Any] = {}
        parts = [
            self.component_templates[c].get("template", {})
            for c in body.get("composed_of", [])
            if c in self.component_templates
        ]
        for part in [*parts, body.get("template") or {}]:
            settings.update(flatten_settings(part.get("settings")))
            override_mapping(mappings, part.get("mappings") or {})
            aliases.update(part.get("aliases") or {})
        return {"settings": settings, "mappings": mappings, "aliases": aliases}

    def create_index(self, name: str, body: dict[str, t.Any], created_ms: int | None = None) -> IndexStore:
        self._validate_name(name)
        settings = {
            "index.number_of_shards": "1",
            "index.number_of_replicas": "1",
            "index.provided_name": name,
        }
        mappings: dict[str, t.Any] = {"properties": {}}
        aliases: dict[str, t.Any] = {}
        found = self.matching_template(name)
        if found is not None:
            composed = self.composed(found[1])
            settings.update(composed["settings"])
            mappings = composed["mappings"]
            aliases.update(composed["aliases"])
        requested = flatten_settings(body.get("settings"))
        check_settings(requested)
        settings.update(requested)
        override_mapping(mappings, body.get("mappings") or {})
        aliases.update(body.get("aliases") or {})
        mapping = Mapping(mappings, error_type=self.error_type)
        store = IndexStore(name, settings, mapping, {a: dict(v or {}) for a, v in aliases.items()}, created_ms)
        self.indices[name] = store
        return store

    def delete_index(self, expr: str, ignore_unavailable: bool = False) -> None:
        if expr in ("_all", "*") or "*" in expr or "?" in expr:  # action.destructive_requires_name=true
            raise bad_request("Wildcard expressions or all indices are not allowed")
        for store in self.resolve(expr, ignore_unavailable=ignore_unavailable):
            self.indices.pop(store.name, None)

    # ---- aliases ------------------------------------------------------------------------------
    def alias_actions(self, actions: list[dict[str, t.Any]]) -> None:
        staged = {n: copy.deepcopy(s.aliases) for n, s in self.indices.items()}
        for action in actions:
            ((kind, body),) = action.items()
            names = body.get("indices") or [body.get("index")]
            aliases = body.get("aliases") or [body.get("alias")]
            targets = [s.name for n in names for s in self.resolve(n)]
            if kind == "remove_index":
                for n in targets:
                    staged.pop(n, None)
                continue
            for target in targets:
                for alias in aliases:
                    if kind == "add":
                        props = {k: v for k, v in body.items() if k not in ("index", "indices", "alias", "aliases")}
                        staged[target][alias] = props
                    elif kind == "remove":
                        matched = [a for a in staged[target] if fnmatch.fnmatchcase(a, alias)]
                        if not matched and body.get("must_exist") is not False:
                            raise EsError(
                                404,
                                "aliases_not_found_exception",
                                f"aliases [{alias}] missing",
                                extra={"resource.type": "aliases", "resource.id": alias},
                            )
                        for a in matched:
                            del staged[target][a]
                    else:
                        raise bad_request(f"unknown alias action [{kind}]")
        for name, aliases in staged.items():
            if name in self.indices:
                self.indices[name].aliases = aliases
        for name in set(self.indices) - set(staged):
            del self.indices[name]

    # ---- ILM ----------------------------------------------------------------------------------
    def apply_lifecycle(self, now: float | None = None) -> list[str]:
        """Delete indices whose ILM policy's delete phase ``min_age`` has passed.

        Age counts from ``index.lifecycle.origination_date`` when the index sets it (epoch
        milliseconds, as in Elasticsearch), otherwise from the index's creation.
        """
        now_ms = int((time.time() if now is None else now) * 1000)
        deleted = []
        for name, store in list(self.indices.items()):
            policy = self.ilm.get(store.settings.get("index.lifecycle.name", ""))
            if policy is None:
                continue
            phase = policy["policy"].get("phases", {}).get("delete")
            if not phase or "delete" not in (phase.get("actions") or {}):
                continue
            origin = store.settings.get("index.lifecycle.origination_date")
            origin_ms = int(origin) if origin not in (None, "") else store.created_ms
            if origin_ms + parse_duration_ms(str(phase.get("min_age", "0ms"))) <= now_ms:
                del self.indices[name]
                deleted.append(name)
        return deleted

    # ---- refresh & persistence ----------------------------------------------------------------
    def refresh_due(self) -> None:
        """The periodic refresh of every index with changes older than its ``refresh_interval``."""
        now = time.monotonic()
        refreshed = False
        for store in self.indices.values():
            if store.due(self.default_refresh, now):
                store.refresh()
                refreshed = True
        if refreshed:
            self.refreshed.notify_all()
        if now - self._last_gc >= 1.0:
            self._last_gc = now
            for store in self.indices.values():
                if store.deleted_at:
                    store.forget_deletes()

    def refresh_now(self, stores: t.Iterable[IndexStore]) -> None:
        """Refresh ``stores`` at once (``_refresh``, ``refresh=true``); releases ``wait_for`` requests."""
        for store in stores:
            store.refresh()
        self.refreshed.notify_all()

    def wait_for_refresh(self, stores: t.Iterable[IndexStore]) -> bool:
        """``refresh=wait_for``: return once a refresh has made the stores' changes searchable.

        Called with ``lock`` held; the wait releases it. Nothing is forced: the periodic refresh
        (``index.refresh_interval``), an explicit ``_refresh`` or another request's ``refresh=true``
        ends the wait, and with ``refresh_interval: -1`` only the latter two do. A store that already
        has ``index.max_refresh_listeners`` requests waiting is refreshed at once instead; returns
        whether that happened (the response's ``forced_refresh``).
        """
        forced = False
        waits: list[tuple[IndexStore, int]] = []
        for store in stores:
            if not store.pending:
                continue  # nothing of this request left unpublished
            if store.refresh_listeners >= store.max_refresh_listeners:
                store.refresh()
                forced = True
                continue
            store.refresh_listeners += 1
            waits.append((store, store.refreshes + 1))
        if forced:
            self.refreshed.notify_all()
        waiting = waits
        try:
            while waiting and not self.closing:
                self.refreshed.wait(0.05)
                waiting = [(s, n) for s, n in waiting if s.refreshes < n and self.indices.get(s.name) is s]
        finally:
            for store, _ in waits:
                store.refresh_listeners -= 1
        return forced

    def close(self) -> None:
        """Release every request waiting for a refresh (the server is stopping)."""
        self.closing = True
        self.refreshed.notify_all()

    def save(self, directory: Path) -> None:
        """Write the whole cluster to ``directory`` (see :mod:`~flask_difylogstore.testing.es.persistence`)."""
        persistence.save(self, directory)

    def load(self, directory: Path) -> None:
        """Replace the cluster's state with what ``directory`` holds, if anything."""
        persistence.load(self, directory)
