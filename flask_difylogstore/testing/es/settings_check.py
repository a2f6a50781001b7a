"""Index settings audits: known settings this server honours or that change nothing here; the rest is refused.

Elasticsearch refuses a setting it does not know with ``illegal_argument_exception`` "unknown setting
[index.x] please check that any required plugins are installed, or check the breaking changes
documentation for removed settings". Settings it knows that would change results here and that
this server does not implement (analysis, index sorting, ingest pipelines, blocks ...) are refused
with a message saying so.
"""

from __future__ import annotations

import typing as t

from flask_difylogstore.testing.es.errors import EsError

# Honoured by this server.
HONOURED = {
    "index.number_of_shards", "index.number_of_replicas", "index.refresh_interval", "index.max_result_window",
    "index.mapping.total_fields.limit", "index.lifecycle.name", "index.lifecycle.origination_date",
    "index.gc_deletes", "index.max_refresh_listeners", "index.max_docvalue_fields_search",
    "index.max_regex_length", "index.provided_name", "index.creation_date", "index.uuid",
}  # fmt: skip
# Known to Elasticsearch; nothing they do changes an answer of a one-node, in-memory server.
NEUTRAL = {
    "index.codec", "index.lifecycle.rollover_alias", "index.lifecycle.parse_origination_date",
    "index.lifecycle.indexing_complete", "index.lifecycle.step.wait_time_threshold", "index.priority",
    "index.max_inner_result_window", "index.max_rescore_window", "index.max_script_fields",
    "index.max_ngram_diff", "index.max_shingle_diff", "index.max_terms_count", "index.max_slices_per_scroll",
    "index.max_adjacency_matrix_filters", "index.mapping.nested_fields.limit", "index.mapping.nested_objects.limit",
    "index.mapping.depth.limit", "index.mapping.field_name_length.limit", "index.mapping.dimension_fields.limit",
    "index.number_of_routing_shards", "index.shard.check_on_startup", "index.load_fixed_bitset_filters_eagerly",
    "index.unassigned.node_left.delayed_timeout", "index.write.wait_for_active_shards", "index.format",
    "index.soft_deletes.enabled", "index.soft_deletes.retention_lease.period", "index.flush_after_merge",
    "index.query.default_field", "index.auto_expand_replicas", "index.default_pipeline", "index.final_pipeline",
    "index.hidden", "index.mode", "index.mapping.ignore_malformed", "index.mapping.coerce",
    "index.blocks.read_only", "index.blocks.read_only_allow_delete",
    "index.blocks.read", "index.blocks.write", "index.blocks.metadata", "index.similarity.default.type",
}  # fmt: skip
NEUTRAL_PREFIXES = (
    "index.routing.allocation.", "index.search.slowlog.", "index.indexing.slowlog.", "index.merge.",
    "index.translog.", "index.store.", "index.queries.cache.", "index.requests.cache.", "index.search.idle.",
    "index.lifecycle.", "index.allocation.", "index.shard_limit.", "index.indexing_pressure.", "index.version.",
)  # fmt: skip
# Known, but this server does not implement what they do: refused unless set to their default.
REFUSED_PREFIXES = ("index.analysis.", "index.sort.", "index.similarity.", "index.routing_partition_size")
_DEFAULTS = {
    "index.default_pipeline": ("_none",),
    "index.final_pipeline": ("_none",),
    "index.hidden": ("false",),
    "index.mode": ("standard",),
    "index.auto_expand_replicas": ("false",),
    "index.query.default_field": ("*",),
    "index.blocks.read_only": ("false",),
    "index.blocks.read_only_allow_delete": ("false",),
    "index.blocks.read": ("false",),
    "index.blocks.write": ("false",),
    "index.blocks.metadata": ("false",),
    "index.similarity.default.type": ("BM25",),
    "index.mapping.ignore_malformed": ("false",),
    "index.mapping.coerce": ("true",),
}
_INTEGERS = {"index.number_of_shards", "index.number_of_replicas", "index.max_result_window",
             "index.mapping.total_fields.limit", "index.max_refresh_listeners", "index.max_docvalue_fields_search",
             "index.max_regex_length"}  # fmt: skip


def check_settings(flat: dict[str, str]) -> None:
    """Validate flat ``index.*`` settings (``None`` values, which reset a setting, are fine)."""
    for key, value in flat.items():
        if key in HONOURED:
            if key in _INTEGERS and value != "None":
                try:
                    int(value)
                except ValueError:
                    raise EsError(
                        400, "illegal_argument_exception", f"Failed to parse value [{value}] for setting [{key}]"
                    ) from None
            continue
        default = _DEFAULTS.get(key)
        if default is not None and value not in (*default, "None"):
            raise _refused(key, value)
        if key in NEUTRAL or key.startswith(NEUTRAL_PREFIXES):
            continue
        if key.startswith(REFUSED_PREFIXES):
            raise _refused(key, value)
        raise EsError(
            400,
            "illegal_argument_exception",
            f"unknown setting [{key}] please check that any required plugins are installed, or check the breaking "
            "changes documentation for removed settings",
        )


def _refused(key: str, value: str) -> EsError:
    return EsError(
        400,
        "illegal_argument_exception",
        f"The index setting [{key}: {value}] is not implemented by this local Elasticsearch-compatible server",
    )


def flatten_settings(body: t.Any, prefix: str = "") -> dict[str, str]:
    """Nested or dotted settings, with or without ``index.``, as flat ``{"index.x.y": "value"}``."""
    out: dict[str, str] = {}
    for key, value in (body or {}).items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten_settings(value, path + "."))
        else:
            if not path.startswith("index."):
                path = "index." + path
            out[path] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def nest_settings(flat: dict[str, str]) -> dict[str, t.Any]:
    out: dict[str, t.Any] = {}
    for key, value in sorted(flat.items()):
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out
