"""Composable index templates, component templates and ILM policies, stored and returned as Elasticsearch does.

Stored bodies are normalised on PUT the way Elasticsearch stores them: ``index_patterns`` is a
list, settings are ``index.``-prefixed strings returned in nested form (or flat with
``flat_settings``), alias ``routing`` is split into ``index_routing`` / ``search_routing``, and a
lifecycle policy's phases get their default ``min_age`` (``0ms``) and the ``delete`` action its
``delete_searchable_snapshot`` flag. Validation follows ``MetadataIndexTemplateService`` and
``TimeseriesLifecycleType`` (unknown phases and actions, phase order, policies still in use).
"""

from __future__ import annotations

import copy
import datetime as dt
import fnmatch
import time
import typing as t

from flask_difylogstore.testing.es.body_check import not_implemented
from flask_difylogstore.testing.es.datemath import parse_duration_ms
from flask_difylogstore.testing.es.errors import EsError, bad_request
from flask_difylogstore.testing.es.indices import flatten_settings, nest_settings
from flask_difylogstore.testing.es.mapping import validate_properties
from flask_difylogstore.testing.es.mapping_check import check_root
from flask_difylogstore.testing.es.routing import Node, Request, Response, Router
from flask_difylogstore.testing.es.settings_check import check_settings

routes = Router()
"""This module's endpoints; the server adds them to its own table."""

ACK = {"acknowledged": True}
_INDEX_TEMPLATE_KEYS = {"index_patterns", "template", "priority", "composed_of", "version", "_meta", "data_stream",
                        "allow_auto_create", "ignore_missing_component_templates", "deprecated"}  # fmt: skip
_COMPONENT_KEYS = {"template", "version", "_meta", "deprecated"}
_TEMPLATE_KEYS = {"settings", "mappings", "aliases", "lifecycle", "data_stream_options"}
PHASE_ACTIONS = {
    "hot": {"set_priority", "unfollow", "rollover", "readonly", "downsample", "shrink", "forcemerge",
            "searchable_snapshot"},
    "warm": {"set_priority", "unfollow", "readonly", "downsample", "allocate", "migrate", "shrink", "forcemerge"},
    "cold": {"set_priority", "unfollow", "readonly", "downsample", "searchable_snapshot", "allocate", "migrate"},
    "frozen": {"unfollow", "searchable_snapshot"},
    "delete": {"wait_for_snapshot", "delete"},
}  # fmt: skip


def _unknown(section: str, key: str, *path: str) -> EsError:
    error = EsError(400, "x_content_parse_exception", f"[{section}] unknown field [{key}]")
    error.path = (*path, key)  # reported with its [line:col]
    return error


def _normalise_section(section: t.Any) -> dict[str, t.Any]:
    if not isinstance(section, dict):
        raise EsError(400, "x_content_parse_exception", "[template] failed to parse field [template]")
    for key in section:
        if key not in _TEMPLATE_KEYS:
            raise _unknown("template", key, "template")
        if key in ("lifecycle", "data_stream_options"):
            raise not_implemented(f"[template.{key}]")
    out: dict[str, t.Any] = {}
    if section.get("settings") is not None:
        out["settings"] = flatten_settings(section["settings"])
        check_settings(out["settings"])
    if section.get("mappings") is not None:
        mappings = copy.deepcopy(section["mappings"])
        check_root(mappings)
        validate_properties(mappings.get("properties") or {})
        out["mappings"] = mappings
    if section.get("aliases") is not None:
        aliases: dict[str, t.Any] = {}
        for name, spec in section["aliases"].items():
            spec = dict(spec or {})
            routing = spec.pop("routing", None)
            if routing is not None:
                spec.setdefault("index_routing", str(routing))
                spec.setdefault("search_routing", str(routing))
            aliases[name] = spec
        out["aliases"] = aliases
    return out


def _render_section(section: dict[str, t.Any], flat: bool) -> dict[str, t.Any]:
    out = copy.deepcopy(section)
    if "settings" in out:
        settings = flatten_settings(out["settings"])
        out["settings"] = settings if flat else nest_settings(settings)
    return out


def _render(kind: str, body: dict[str, t.Any], flat: bool) -> dict[str, t.Any]:
    out = copy.deepcopy(body)
    if "template" in out:
        out["template"] = _render_section(out["template"], flat)
    if kind == "index_template":
        out.setdefault("composed_of", [])
    return out


def _overlap(a: str, b: str) -> bool:
    return a == b or fnmatch.fnmatchcase(a, b) or fnmatch.fnmatchcase(b, a)


def put_index_template(srv: Node, name: str, body: t.Any) -> None:
    if not isinstance(body, dict):
        raise EsError(400, "x_content_parse_exception", "[index_template] failed to parse")
    for key in body:
        if key not in _INDEX_TEMPLATE_KEYS:
            raise _unknown("index_template", key)
    if body.get("data_stream") is not None:
        raise not_implemented("[data_stream] in index templates")
    if body.get("allow_auto_create") is False:
        raise not_implemented("[allow_auto_create: false]")
    patterns = body.get("index_patterns")
    patterns = [patterns] if isinstance(patterns, str) else list(patterns or [])
    if not patterns:
        raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: index patterns are missing;")
    stored: dict[str, t.Any] = {"index_patterns": patterns}
    if "template" in body:
        stored["template"] = _normalise_section(body["template"])
    for key in ("composed_of", "priority", "version", "_meta", "allow_auto_create",
                "ignore_missing_component_templates", "deprecated"):  # fmt: skip
        if body.get(key) is not None:
            stored[key] = copy.deepcopy(body[key])
    ignore = set(stored.get("ignore_missing_component_templates") or [])
    missing = [c for c in stored.get("composed_of", []) if c not in srv.cluster.component_templates and c not in ignore]
    if missing:
        raise bad_request(
            f"index template [{name}] specifies component templates [{', '.join(missing)}] that do not exist"
        )
    priority = int(stored.get("priority", 0))
    for other, obody in srv.cluster.index_templates.items():
        if other == name or int(obody.get("priority", 0)) != priority:
            continue
        if any(_overlap(p, q) for p in patterns for q in obody["index_patterns"]):
            raise bad_request(
                f"index template [{name}] has index patterns [{', '.join(patterns)}] matching patterns from existing "
                f"templates [{other}] with patterns ({other} => [{', '.join(obody['index_patterns'])}]) that have "
                f"the same priority [{priority}], multiple index templates may not match during index creation, "
                "please use a different priority"
            )
    srv.cluster.index_templates[name] = stored


def put_component_template(srv: Node, name: str, body: t.Any) -> None:
    if not isinstance(body, dict):
        raise EsError(400, "x_content_parse_exception", "[component_template] failed to parse")
    for key in body:
        if key not in _COMPONENT_KEYS:
            raise _unknown("component_template", key)
    if "template" not in body:
        raise EsError(400, "x_content_parse_exception", "Required [template]")
    stored: dict[str, t.Any] = {"template": _normalise_section(body["template"])}
    for key in ("version", "_meta", "deprecated"):
        if body.get(key) is not None:
            stored[key] = copy.deepcopy(body[key])
    srv.cluster.component_templates[name] = stored


def _template_routes(kind: str, store_attr: str, list_key: str) -> None:
    label = kind.replace("_", " ")

    def put(srv: Node, req: Request) -> Response:
        body = req.json()
        name = req.args["name"]
        with srv.cluster.lock:
            if req.flag("create") and name in getattr(srv.cluster, store_attr):
                raise bad_request(f"{label} [{name}] already exists")
            (put_index_template if kind == "index_template" else put_component_template)(srv, name, body)
        return 200, ACK

    def get(srv: Node, req: Request) -> Response:
        name = req.args.get("name", "*")
        flat = req.flag("flat_settings")
        with srv.cluster.lock:
            templates = getattr(srv.cluster, store_attr)
            found = [
                {"name": n, kind: _render(kind, b, flat)}
                for n, b in sorted(templates.items())
                if any(fnmatch.fnmatchcase(n, p) for p in name.split(","))
            ]
        if not found and "*" not in name:
            raise EsError(404, "resource_not_found_exception", f"{label} matching [{name}] not found")
        return 200, {list_key: found}

    def delete(srv: Node, req: Request) -> Response:
        names = req.args["name"].split(",")
        with srv.cluster.lock:
            templates = getattr(srv.cluster, store_attr)
            chosen: list[str] = []
            for pattern in names:
                hits = [n for n in templates if fnmatch.fnmatchcase(n, pattern)]
                if not hits and "*" not in pattern:
                    raise EsError(404, "resource_not_found_exception", f"{label} matching [{pattern}] not found")
                chosen += hits
            if kind == "component_template":
                users = sorted(
                    n for n, b in srv.cluster.index_templates.items() if set(b.get("composed_of", [])) & set(chosen)
                )
                if users:
                    raise bad_request(
                        f"component templates [{', '.join(sorted(chosen))}] cannot be removed as they are still in "
                        f"use by index templates [{', '.join(users)}]"
                    )
            for n in chosen:
                templates.pop(n, None)
        return 200, ACK

    routes.add("PUT POST", f"_{kind}/{{name}}", put)
    routes.add("GET", f"_{kind}/{{name}}", get)
    routes.add("GET", f"_{kind}", get)
    routes.add("DELETE", f"_{kind}/{{name}}", delete)


_template_routes("index_template", "index_templates", "index_templates")
_template_routes("component_template", "component_templates", "component_templates")


# ---- ILM -------------------------------------------------------------------------------------
def normalise_policy(policy: t.Any) -> dict[str, t.Any]:
    """Validate a lifecycle policy as ``TimeseriesLifecycleType.validate`` does; fill in defaults."""
    if not isinstance(policy, dict):
        raise EsError(400, "x_content_parse_exception", "[put_lifecycle_request] failed to parse field [policy]")
    for key in policy:
        if key not in ("phases", "_meta", "deprecated"):
            raise _unknown("lifecycle_policy", key, "policy")
    out: dict[str, t.Any] = {k: copy.deepcopy(v) for k, v in policy.items() if k != "phases"}
    phases: dict[str, t.Any] = {}
    ages: list[tuple[str, str, int]] = []
    for phase, spec in (policy.get("phases") or {}).items():
        if phase not in PHASE_ACTIONS:
            raise bad_request(f"Timeseries lifecycle does not support phase [{phase}]")
        spec = spec or {}
        for key in spec:
            if key not in ("min_age", "actions"):
                raise _unknown("phase", key, "policy", "phases", phase)
        min_age = str(spec.get("min_age", "0ms"))
        try:
            ages.append((phase, min_age, parse_duration_ms(min_age)))
        except EsError:
            raise EsError(
                400, "x_content_parse_exception", f"[phase] failed to parse field [min_age]: [{min_age}]"
            ) from None
        actions: dict[str, t.Any] = {}
        for action, params in (spec.get("actions") or {}).items():
            if action not in PHASE_ACTIONS[phase]:
                known = set().union(*PHASE_ACTIONS.values()) | {"freeze"}
                if action not in known:
                    raise EsError(400, "x_content_parse_exception", f"[phase] unknown field [{action}]")
                raise bad_request(f"invalid action [{action}] defined in phase [{phase}]")
            params = dict(params or {})
            if action == "delete":
                params.setdefault("delete_searchable_snapshot", True)
            actions[action] = params
        phases[phase] = {"min_age": min_age, "actions": actions}
    order = [p for p in PHASE_ACTIONS if p in phases]
    timed = [(p, a, ms) for p, a, ms in sorted(ages, key=lambda x: order.index(x[0]))]
    for (early, early_age, early_ms), (late, late_age, late_ms) in zip(timed, timed[1:], strict=False):
        if late_ms < early_ms:
            raise bad_request(
                f"Your policy is configured to run the {late} phase (min_age: {late_age}) before the {early} phase "
                f"(min_age: {early_age}). You should change the phase timing so that the phases will execute in the "
                "order of hot, warm, then cold."
            )
    out["phases"] = phases
    return out


@routes.route("PUT", "_ilm/policy/{name}")
def put_policy(srv: Node, req: Request) -> Response:
    body = req.json()
    for key in body:
        if key != "policy":
            raise _unknown("put_lifecycle_request", key)
    if "policy" not in body:
        raise EsError(400, "x_content_parse_exception", "[1:1] [put_lifecycle_request] policy not specified")
    policy = normalise_policy(body["policy"])
    name = req.args["name"]
    with srv.cluster.lock:
        previous = srv.cluster.ilm.get(name)
        srv.cluster.ilm[name] = {
            "version": (previous["version"] + 1) if previous else 1,
            "modified_date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "policy": policy,
        }
    return 200, ACK


def _policy_users(srv: Node, name: str) -> tuple[list[str], list[str]]:
    indices = sorted(s.name for s in srv.cluster.indices.values() if s.settings.get("index.lifecycle.name") == name)
    templates = sorted(
        n
        for n, b in srv.cluster.index_templates.items()
        if srv.cluster.composed(b)["settings"].get("index.lifecycle.name") == name
    )
    return indices, templates


@routes.route("GET", "_ilm/policy", "_ilm/policy/{name}")
def get_policy(srv: Node, req: Request) -> Response:
    name = req.args.get("name")
    with srv.cluster.lock:
        if name and name not in srv.cluster.ilm:
            raise EsError(404, "resource_not_found_exception", f"Lifecycle policy not found: [{name}]")
        out = {}
        for n, p in srv.cluster.ilm.items():
            if name is not None and n != name:
                continue
            indices, templates = _policy_users(srv, n)
            out[n] = {
                **copy.deepcopy(p),
                "in_use_by": {"indices": indices, "data_streams": [], "composable_templates": templates},
            }
    return 200, out


@routes.route("DELETE", "_ilm/policy/{name}")
def delete_policy(srv: Node, req: Request) -> Response:
    name = req.args["name"]
    with srv.cluster.lock:
        if name not in srv.cluster.ilm:
            raise EsError(404, "resource_not_found_exception", f"Lifecycle policy not found: [{name}]")
        indices, _ = _policy_users(srv, name)
        if indices:
            raise bad_request(
                f"Cannot delete policy [{name}]. It is in use by one or more indices: [{', '.join(indices)}]"
            )
        del srv.cluster.ilm[name]
    return 200, ACK


@routes.route("GET", "_ilm/status")
def ilm_status(srv: Node, req: Request) -> Response:
    return 200, {"operation_mode": "RUNNING", "time": int(time.time())}
