"""Templates, lifecycle policy and existing indices: created once, merged (never rebuilt), race-safe."""

from __future__ import annotations

import dataclasses
import threading
import time
import typing as t
from datetime import UTC, datetime, timedelta

from flask_difylogstore.backends.base import RecordQuery, Scope
from flask_difylogstore.backends.elasticsearch import ElasticsearchBackend
from flask_difylogstore.backends.elasticsearch.client import build_client
from flask_difylogstore.backends.elasticsearch.indices import IndexLayout
from flask_difylogstore.backends.elasticsearch.lifecycle import Provisioner
from flask_difylogstore.records import FieldType, RecordKind
from flask_difylogstore.schemas import RecordSchema, schemas
from flask_difylogstore.settings import LogStoreSettings
from flask_difylogstore.testing.es import LocalElasticsearchServer
from tests.backends import es_fixtures
from tests.backends.es_fixtures import store
from tests.backends.records import RecordFactory

es_backend = es_fixtures.es_backend
es_prefix = es_fixtures.es_prefix
es_server = es_fixtures.es_server
es_settings = es_fixtures.es_settings
records = es_fixtures.records


def _actions(report: t.Any) -> dict[str, str]:
    return {c.target: c.action for c in report.changes}


def _backend(settings: LogStoreSettings, **overrides: t.Any) -> ElasticsearchBackend:
    es = settings.elasticsearch
    values: dict[str, t.Any] = {
        "index_prefix": es.index_prefix,
        "retention_days": es.retention_days,
        "number_of_replicas": es.number_of_replicas,
        **overrides,
    }
    return ElasticsearchBackend(build_client(es), **values)


def _with_extra_field(name: str) -> dict[RecordKind, RecordSchema]:
    """The schemas of a newer Dify that added a column to workflow runs."""
    out = dict(schemas())
    run = out[RecordKind.RUN]
    out[RecordKind.RUN] = dataclasses.replace(run, fields={**run.fields, name: FieldType.KEYWORD})
    return out


def test_first_run_creates_then_everything_is_kept(es_settings: LogStoreSettings) -> None:
    backend = _backend(es_settings)
    prefix = es_settings.elasticsearch.index_prefix
    dry = backend.provision(dry_run=True)
    assert dry.changed and backend.client.indices.get_index_template(name=f"{prefix}-*").body == {"index_templates": []}
    first = backend.provision()
    assert _actions(first) == {
        "cluster": "keep",
        f"ilm_policy:{prefix}-workflow-logs": "create",
        **{f"index_template:{prefix}-{kind.value}": "create" for kind in RecordKind},
    }
    second = backend.provision()
    assert not second.changed, second.changes
    template = backend.client.indices.get_index_template(name=f"{prefix}-workflow_execution").body
    body = template["index_templates"][0]["index_template"]
    assert body["index_patterns"] == [f"{prefix}-workflow_execution-*"]
    assert body["template"]["mappings"]["dynamic"] == "strict"
    settings = body["template"]["settings"]["index"]
    assert (str(settings["number_of_replicas"]), settings["lifecycle"]["name"]) == (
        "0",
        f"{prefix}-workflow-logs",
    )
    backend.close()


def test_custom_fields_settings_and_phases_survive_an_upgrade(
    es_settings: LogStoreSettings, es_server: LocalElasticsearchServer, records: RecordFactory
) -> None:
    prefix = es_settings.elasticsearch.index_prefix
    old = _backend(es_settings)
    old.provision()
    store(old, [records.run(id="before-upgrade")])
    client = old.client
    name = f"{prefix}-workflow_execution"
    # An operator tunes the template, the index and the policy by hand.
    body = client.indices.get_index_template(name=name).body["index_templates"][0]["index_template"]
    body["template"]["mappings"]["properties"]["ops_note"] = {"type": "keyword"}
    body["template"]["settings"]["index"]["refresh_interval"] = "5s"
    client.indices.put_index_template(name=name, body=body)
    policy = client.ilm.get_lifecycle(name=f"{prefix}-workflow-logs").body[f"{prefix}-workflow-logs"]["policy"]
    policy["phases"]["warm"] = {"min_age": "7d", "actions": {"readonly": {}}}
    client.ilm.put_lifecycle(name=f"{prefix}-workflow-logs", policy=policy)

    newer = _backend(es_settings, retention_days=30, record_schemas=_with_extra_field("trace_id"))
    dry = newer.provision(dry_run=True)
    assert _actions(dry)[f"index_template:{name}"] == "update"
    assert (
        "trace_id"
        not in client.indices.get_mapping(index=f"{name}-*").body[f"{name}-2026.11"]["mappings"]["properties"]
    )
    report = newer.provision()
    changes = {c.target: c for c in report.changes}
    assert changes[f"index_template:{name}"].action == "update"
    assert "add field trace_id" in changes[f"index_template:{name}"].detail
    assert "keep custom fields ops_note" in changes[f"index_template:{name}"].detail
    assert changes[f"index:{name}-2026.11"].action == "update"
    assert changes[f"ilm_policy:{prefix}-workflow-logs"].detail.startswith("delete after 30d")

    merged = client.indices.get_index_template(name=name).body["index_templates"][0]["index_template"]
    properties = merged["template"]["mappings"]["properties"]
    assert properties["ops_note"] == {"type": "keyword"} and properties["trace_id"]["type"] == "keyword"
    assert merged["template"]["settings"]["index"]["refresh_interval"] == "5s"
    phases = client.ilm.get_lifecycle(name=f"{prefix}-workflow-logs").body[f"{prefix}-workflow-logs"]["policy"]
    assert phases["phases"]["warm"]["min_age"] == "7d"
    assert phases["phases"]["delete"]["min_age"] == "30d"
    # The existing partition accepts the new field at once (its mapping was extended).
    store(newer, [records.run(id="after-upgrade", offset_s=60, trace_id="abc")])
    found = newer.search(RecordQuery(RecordKind.RUN, Scope("t1"), limit=None)).records
    assert {r.id: r.data.get("trace_id") for r in found} == {"before-upgrade": None, "after-upgrade": "abc"}
    assert not newer.provision().changed
    old.close()
    newer.close()


def test_concurrent_starts_converge(es_settings: LogStoreSettings) -> None:
    backends = [_backend(es_settings) for _ in range(6)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(backends))

    def start(backend: ElasticsearchBackend) -> None:
        try:
            barrier.wait()
            backend.provision()
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(b,)) for b in backends]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not [thread for thread in threads if thread.is_alive()], "a start did not finish within 30 s"
    assert errors == []
    assert not backends[0].provision().changed
    for backend in backends:
        backend.close()


def test_indices_written_before_provisioning_still_get_the_strict_mapping(
    es_settings: LogStoreSettings, records: RecordFactory
) -> None:
    backend = _backend(es_settings)  # never provisioned: no templates exist
    assert backend.write([records.run(id="early", inputs='{"user_key": {"deep": 1}}')]).ok
    prefix = es_settings.elasticsearch.index_prefix
    mapping = backend.client.indices.get_mapping(index=f"{prefix}-workflow_execution-2026.11").body
    body = mapping[f"{prefix}-workflow_execution-2026.11"]["mappings"]
    assert body["dynamic"] == "strict"
    assert body["properties"]["inputs"]["type"] == "text"
    assert backend.provision().changes  # provisioning afterwards finds the index and keeps it
    backend.close()


def test_partitions_follow_creation_time(es_backend: ElasticsearchBackend, records: RecordFactory) -> None:
    day = 86_400
    store(
        es_backend,
        [records.run(id="nov", offset_s=0), records.run(id="dec", offset_s=40 * day)]
        + [records.run(id="nov", offset_s=0, status="succeeded")],
    )
    prefix = es_backend.layout.prefix
    names = sorted(es_backend.client.indices.get(index=f"{prefix}-*").body)
    assert names == [f"{prefix}-workflow_execution-2026.11", f"{prefix}-workflow_execution-2026.12"]
    layout = IndexLayout("p", "week")
    assert layout.index_for(RecordKind.RUN, datetime(2026, 1, 1)) == "p-workflow_execution-2026.w01"
    assert IndexLayout("p", "day").read_target(RecordKind.RUN, None) == "p-workflow_execution-*"


def test_retention_deletes_whole_partitions(
    es_backend: ElasticsearchBackend, es_server: LocalElasticsearchServer, records: RecordFactory
) -> None:
    store(es_backend, [records.run(id="kept-for-now")])
    prefix = es_backend.layout.prefix
    index = f"{prefix}-workflow_execution-2026.11"
    settings = es_backend.client.indices.get_settings(index=index).body[index]["settings"]["index"]
    assert settings["lifecycle"]["name"] == f"{prefix}-workflow-logs"
    # ILM ages the index from the end of its partition, so data is kept at least the retention.
    end = datetime(2026, 12, 1, tzinfo=UTC)
    assert int(settings["lifecycle"]["origination_date"]) == int(end.timestamp() * 1000)

    later = max(time.time(), end.timestamp())
    assert index not in es_server.apply_lifecycle(now=later + 300 * 86_400)
    deleted = es_server.apply_lifecycle(now=later + 400 * 86_400)
    assert index in deleted
    assert es_backend.search(RecordQuery(RecordKind.RUN, Scope("t1"))).records == []


def test_retention_counts_from_the_partition_not_from_index_creation(
    es_backend: ElasticsearchBackend, es_server: LocalElasticsearchServer, records: RecordFactory
) -> None:
    """Migrated history older than the retention is dropped on the next lifecycle run."""
    now = datetime.now(UTC).replace(tzinfo=None)
    old = records.run(id="ancient", created_at=now - timedelta(days=500))
    fresh = records.run(id="fresh", created_at=now)
    store(es_backend, [old, fresh])
    deleted = es_server.apply_lifecycle()
    assert deleted == [es_backend.layout.index_for(RecordKind.RUN, old.created_at)]


def test_without_lifecycle_api_templates_carry_no_policy(
    es_settings: LogStoreSettings, es_server: LocalElasticsearchServer
) -> None:
    es = es_settings.elasticsearch
    layout = IndexLayout(es.index_prefix)
    provisioner = Provisioner(build_client(es), layout, schemas(), retention_days=30, shards=1, replicas=0)
    es_server.faults.fail_next(1, status=410, error_type="illegal_argument_exception")
    report = provisioner.run()
    assert "retention is not enforced" in report.changes[0].detail
    template = provisioner.client.indices.get_index_template(name=layout.family(RecordKind.RUN)).body
    assert "lifecycle" not in template["index_templates"][0]["index_template"]["template"]["settings"]["index"]
    provisioner.client.close()
