"""Provisioning: the retention policy, one composable index template per record kind, existing indices.

Runs once per process before the first write (never in a repository constructor) and is safe when
many processes start together: every step reads what exists, merges what the package needs into
it and writes the merge back; "already exists" (400 ``resource_already_exists_exception`` or a
409) means another process won the race and the merge is redone against its result. Merging only
adds: custom mapping fields, extra ILM phases, settings the package does not own and other index
patterns survive. Existing indices get missing fields through a mapping update, because a
template only shapes indices created after it.
"""

from __future__ import annotations

import copy
import logging
import typing as t
from collections.abc import Mapping

from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout
from elasticsearch import ApiError, Elasticsearch

from flask_difylogstore.backends.base import ProvisionChange, ProvisionReport
from flask_difylogstore.backends.elasticsearch.indices import IndexLayout
from flask_difylogstore.backends.elasticsearch.mappings import (
    MANAGED_BY,
    conflicting_properties,
    desired_mappings,
    index_settings,
    missing_properties,
)
from flask_difylogstore.errors import ProvisioningError
from flask_difylogstore.records import RecordKind
from flask_difylogstore.schemas import RecordSchema

logger = logging.getLogger(__name__)

#: Above the priority of the stack's built-in templates (100-ish), below what operators use to override.
TEMPLATE_PRIORITY = 200
#: Keys newer clusters return with a template but refuse in a put.
_READ_ONLY_TEMPLATE_KEYS = frozenset({"created_date", "created_date_millis", "modified_date", "modified_date_millis"})


def _flat(settings: Mapping[str, t.Any], prefix: str = "") -> dict[str, str]:
    """Nested settings as dotted ``index.*`` keys with string values (the form ES returns)."""
    out: dict[str, str] = {}
    for key, value in settings.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flat(value, path + "."))
        else:
            if not path.startswith("index."):
                path = f"index.{path}"
            out[path] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def _nest(flat: Mapping[str, str]) -> dict[str, t.Any]:
    out: dict[str, t.Any] = {}
    for key, value in sorted(flat.items()):
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _already_exists(exc: ApiError) -> bool:
    return exc.meta.status == 409 or (exc.meta.status == 400 and "already exists" in str(exc))


def desired_policy(retention_days: int) -> dict[str, t.Any]:
    return {
        "_meta": {"managed_by": MANAGED_BY},
        "phases": {
            "hot": {"min_age": "0ms", "actions": {}},
            "delete": {"min_age": f"{retention_days}d", "actions": {"delete": {}}},
        },
    }


def merge_policy(existing: Mapping[str, t.Any], retention_days: int) -> tuple[dict[str, t.Any], list[str]]:
    """The existing policy with the package's delete phase; other phases and actions are kept."""
    merged = copy.deepcopy(dict(existing))
    phases = merged.setdefault("phases", {})
    delete = phases.setdefault("delete", {})
    changes = []
    wanted = f"{retention_days}d"
    if delete.get("min_age") != wanted:
        changes.append(f"delete after {wanted} (was {delete.get('min_age', 'never')})")
        delete["min_age"] = wanted
    actions = delete.setdefault("actions", {})
    if "delete" not in actions:
        actions["delete"] = {}
        changes.append("add delete action")
    return merged, changes


class Provisioner:
    """Brings one cluster to the state the backend needs; ``run`` returns what it found and did."""

    def __init__(
        self,
        client: Elasticsearch,
        layout: IndexLayout,
        schemas: Mapping[RecordKind, RecordSchema],
        *,
        retention_days: int,
        shards: int,
        replicas: int,
    ) -> None:
        self.client = client
        self.layout = layout
        self.schemas = schemas
        self.retention_days = retention_days
        self.shards = shards
        self.replicas = replicas
        #: Whether the cluster has ILM (Elastic serverless does not); ``None`` until checked.
        self.ilm_available: bool | None = None
        #: Indices found while provisioning (the writer need not create them).
        self.existing_indices: list[str] = []

    def run(self, *, dry_run: bool = False) -> ProvisionReport:
        report = ProvisionReport(backend="elasticsearch", dry_run=dry_run)
        self.existing_indices = []
        try:
            self._policy(report, dry_run)
            for kind, schema in self.schemas.items():
                self._template(report, kind, schema, dry_run)
                self._indices(report, kind, schema, dry_run)
        except ApiError as exc:
            raise ProvisioningError(f"Elasticsearch provisioning failed: {exc}") from exc
        except (TransportConnectionError, ConnectionTimeout) as exc:
            raise ProvisioningError(f"Elasticsearch unreachable while provisioning: {exc}") from exc
        return report

    @property
    def policy_name(self) -> str | None:
        return self.layout.policy_name if self.ilm_available is not False else None

    # ---- retention policy -----------------------------------------------------------------------
    def _read_policy(self) -> dict[str, t.Any] | None:
        name = self.layout.policy_name
        try:
            found = self.client.ilm.get_lifecycle(name=name)
        except ApiError as exc:
            if exc.meta.status == 404 and exc.error == "resource_not_found_exception":
                return None
            if exc.meta.status in (400, 404, 405, 410):
                raise _NoLifecycle(str(exc)) from exc
            raise
        return dict(found.body.get(name, {}).get("policy") or {})

    def _policy(self, report: ProvisionReport, dry_run: bool) -> None:
        target = f"ilm_policy:{self.layout.policy_name}"
        try:
            existing = self._read_policy()
        except _NoLifecycle as exc:
            self.ilm_available = False
            detail = f"index lifecycle management unavailable ({exc}); retention is not enforced"
            logger.warning("flask-difylogstore: %s", detail)
            report.changes.append(ProvisionChange(target, "keep", detail))
            return
        self.ilm_available = True
        if existing is None:
            report.changes.append(ProvisionChange(target, "create", f"delete indices {self.retention_days}d old"))
            if not dry_run:
                self.client.ilm.put_lifecycle(name=self.layout.policy_name, policy=desired_policy(self.retention_days))
            return
        merged, changes = merge_policy(existing, self.retention_days)
        if not changes:
            report.changes.append(ProvisionChange(target, "keep", f"delete after {self.retention_days}d"))
            return
        report.changes.append(ProvisionChange(target, "update", "; ".join(changes)))
        if not dry_run:
            self.client.ilm.put_lifecycle(name=self.layout.policy_name, policy=merged)

    # ---- templates ------------------------------------------------------------------------------
    def desired_template(self, kind: RecordKind, schema: RecordSchema) -> dict[str, t.Any]:
        return {
            "index_patterns": [self.layout.pattern(kind)],
            "priority": TEMPLATE_PRIORITY,
            "template": {
                "settings": index_settings(shards=self.shards, replicas=self.replicas, policy=self.policy_name),
                "mappings": desired_mappings(schema),
            },
            "_meta": {"managed_by": MANAGED_BY},
        }

    def merge_template(
        self, existing: Mapping[str, t.Any], kind: RecordKind, schema: RecordSchema
    ) -> tuple[dict[str, t.Any], list[str], list[str]]:
        """``(merged body, changes, notes)``; fields and settings the package does not own are kept."""
        desired = self.desired_template(kind, schema)
        merged = copy.deepcopy(dict(existing))
        changes: list[str] = []
        notes: list[str] = []
        patterns = list(merged.get("index_patterns") or [])
        if self.layout.pattern(kind) not in patterns:
            merged["index_patterns"] = [*patterns, self.layout.pattern(kind)]
            changes.append(f"add index pattern {self.layout.pattern(kind)}")
        merged.setdefault("priority", TEMPLATE_PRIORITY)
        body = merged.setdefault("template", {})
        settings = _flat(body.get("settings") or {})
        for key, value in _flat(desired["template"]["settings"]).items():
            if settings.get(key) != value:
                changes.append(f"set {key}={value} (was {settings.get(key, 'unset')})")
                settings[key] = value
        body["settings"] = _nest(settings)
        mappings = body.setdefault("mappings", {})
        properties = mappings.setdefault("properties", {})
        for name, mapping in missing_properties(properties, schema).items():
            properties[name] = mapping
            changes.append(f"add field {name} ({mapping['type']})")
        notes += [f"keep {c}" for c in conflicting_properties(properties, schema)]
        custom = sorted(set(properties) - set(schema.fields))
        if custom:
            notes.append(f"keep custom fields {', '.join(custom)}")
        if mappings.get("dynamic") not in ("strict", "false", False):
            changes.append(f"set dynamic=strict (was {mappings.get('dynamic', 'true')})")
            mappings["dynamic"] = "strict"
        return merged, changes, notes

    def _read_template(self, name: str) -> dict[str, t.Any] | None:
        try:
            found = self.client.indices.get_index_template(name=name)
        except ApiError as exc:
            if exc.meta.status == 404:
                return None
            raise
        for item in found.body.get("index_templates", []):
            if item.get("name") == name:
                return {k: v for k, v in item["index_template"].items() if k not in _READ_ONLY_TEMPLATE_KEYS}
        return None

    def _template(self, report: ProvisionReport, kind: RecordKind, schema: RecordSchema, dry_run: bool) -> None:
        name = self.layout.family(kind)
        target = f"index_template:{name}"
        existing = self._read_template(name)
        if existing is None:
            desired = self.desired_template(kind, schema)
            report.changes.append(
                ProvisionChange(target, "create", f"{len(schema.fields)} fields, patterns {self.layout.pattern(kind)}")
            )
            if dry_run:
                return
            try:
                self.client.indices.put_index_template(name=name, create=True, body=desired)
                return
            except ApiError as exc:
                if not _already_exists(exc):
                    raise
            existing = self._read_template(name) or desired  # created concurrently: merge into it
        merged, changes, notes = self.merge_template(existing, kind, schema)
        if not changes:
            report.changes.append(ProvisionChange(target, "keep", "; ".join(["up to date", *notes])))
            return
        report.changes.append(ProvisionChange(target, "update", "; ".join(changes + notes)))
        if not dry_run:
            self.client.indices.put_index_template(name=name, body=merged)

    # ---- existing indices -----------------------------------------------------------------------
    def _indices(self, report: ProvisionReport, kind: RecordKind, schema: RecordSchema, dry_run: bool) -> None:
        found = self.client.indices.get_mapping(
            index=self.layout.pattern(kind), allow_no_indices=True, ignore_unavailable=True
        )
        for index, body in sorted(found.body.items()):
            self.existing_indices.append(index)
            properties = (body.get("mappings") or {}).get("properties") or {}
            missing = missing_properties(properties, schema)
            conflicts = conflicting_properties(properties, schema)
            if not missing:
                if conflicts:
                    report.changes.append(ProvisionChange(f"index:{index}", "keep", "; ".join(conflicts)))
                continue
            detail = ", ".join(f"add field {n}" for n in missing)
            report.changes.append(ProvisionChange(f"index:{index}", "update", detail))
            if not dry_run:
                self.client.indices.put_mapping(index=index, properties=missing)


class _NoLifecycle(Exception):
    """The cluster has no ILM API (e.g. serverless); retention must be handled by the platform."""
