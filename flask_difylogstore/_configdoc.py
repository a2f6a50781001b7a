"""Render the configuration reference from the settings classes, so the docs cannot drift.

``python -m flask_difylogstore config-reference > docs/configuration.md`` regenerates the page; a
test fails when the committed page differs from what the classes say.
"""

from __future__ import annotations

import typing as t

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from flask_difylogstore.settings import LogStoreSettings, env_names

_SECTIONS = {
    "": ("General", "Backend choice, migration switches, startup and payload limits."),
    "sls": ("Aliyun SLS", "Used when `LOGSTORE_BACKEND=aliyun_sls`."),
    "elasticsearch": ("Elasticsearch", "Used when `LOGSTORE_BACKEND=elasticsearch` or `ELASTICSEARCH_ENABLED=true`."),
    "pipeline": ("Write pipeline", "The background writer and its durable spool."),
}


def _type_name(field: FieldInfo) -> str:
    annotation = field.annotation
    if annotation is SecretStr:
        return "secret string"
    if "Path" in str(annotation):
        return "path"
    name = getattr(annotation, "__name__", None) or str(annotation)
    if t.get_origin(annotation) is t.Literal:
        return " \\| ".join(f"`{v}`" for v in t.get_args(annotation))
    if "datetime" in str(annotation):
        return "ISO datetime (UTC)"
    return {
        "str": "string",
        "int": "integer",
        "float": "number",
        "bool": "boolean",
        "Path": "path",
        "list": "list of URLs",
    }.get(name, str(annotation).replace("typing.", "").replace("datetime.", ""))


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        if field.annotation is list or "list" in str(field.annotation):
            return "(empty)"
        return "per-user data dir" if "Path" in str(field.annotation) else "(computed)"
    value = field.default
    if isinstance(value, SecretStr) or value in ("", None):
        return "(empty)"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    return f"`{value}`"


def render_configuration_reference() -> str:
    """The Markdown configuration page: one entry per environment variable."""
    lines = [
        "# Configuration reference",
        "",
        "Every setting is read from the environment, the `.env` file or a file of the same name in the",
        "secrets directory (`LOGSTORE_SECRETS_DIR`, else `/run/secrets` when it exists: Docker and Kubernetes",
        "secrets), in that order of precedence; keyword arguments to `LogStoreSettings(...)` win over all",
        "three. Names are case-insensitive. An invalid value fails `init_app` with one `LogStoreConfigError`",
        "listing every bad variable (secret values are never shown, passwords in URLs are masked).",
        "",
        "This page is generated from the settings classes (`python -m flask_difylogstore config-reference`).",
    ]
    groups: dict[str, list[tuple[str, FieldInfo]]] = {key: [] for key in _SECTIONS}
    for name, field in LogStoreSettings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            groups[name].extend(annotation.model_fields.items())
        else:
            groups[""].append((name, field))
    for key, (title, intro) in _SECTIONS.items():
        lines += ["", f"## {title}", "", intro, "", "| Variable | Type | Default | Meaning |", "|---|---|---|---|"]
        for _name, field in groups[key]:
            names = env_names(field)
            if not names:
                continue
            shown = " / ".join(f"`{n}`" for n in names)
            meaning = (field.description or "").replace("|", "\\|")
            lines.append(f"| {shown} | {_type_name(field)} | {_default(field)} | {meaning} |")
    return "\n".join(lines) + "\n"
