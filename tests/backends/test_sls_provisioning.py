"""Provisioning against the local SLS server: fresh project, merges that keep tuning, races."""

from __future__ import annotations

import threading
import typing as t

from aliyun.log import IndexConfig, IndexKeyConfig

from flask_difylogstore.backends.aliyun_sls import AliyunSLSBackend
from flask_difylogstore.backends.aliyun_sls.client import make_client
from flask_difylogstore.backends.aliyun_sls.schema import KEYWORD_TOKENS, desired_index, diff_index
from flask_difylogstore.records import RecordKind
from flask_difylogstore.schemas import schema
from flask_difylogstore.settings import AliyunSLSSettings

KINDS = [k.value for k in RecordKind]


def _index(settings: AliyunSLSSettings, logstore: str) -> dict[str, t.Any]:
    client = make_client(settings)
    return dict(client.get_index_config(settings.project_name, logstore).get_body())


def test_fresh_project_is_created_with_every_logstore_and_index(sls_settings: AliyunSLSSettings) -> None:
    backend = AliyunSLSBackend(sls_settings.model_copy(update={"logstore_prefix": "dify_"}))
    dry = backend.provision(dry_run=True)
    assert dry.dry_run and dry.changed
    assert [c.target for c in dry.changes if c.action == "create"][:2] == [
        f"project:{sls_settings.project_name}",
        "logstore:dify_workflow_execution",
    ]
    client = make_client(sls_settings)
    assert not any(p["projectName"] == sls_settings.project_name for p in client.list_project().get_projects())

    report = backend.provision()
    created = {c.target for c in report.changes if c.action == "create"}
    assert {f"logstore:dify_{k}" for k in KINDS} <= created and {f"index:dify_{k}" for k in KINDS} <= created
    index = _index(sls_settings, "dify_workflow_execution")
    assert index["max_text_len"] == 2048
    assert index["keys"]["log_version"] == {"type": "long", "doc_value": True}
    assert index["keys"]["tenant_id"]["caseSensitive"] is True
    assert "-" not in index["keys"]["tenant_id"]["token"]
    assert index["keys"]["inputs"]["type"] == "text" and index["keys"]["inputs"]["doc_value"] is True

    again = backend.provision()
    assert not again.changed and {c.action for c in again.changes} == {"keep"}


def test_existing_index_keeps_custom_keys_tuned_tokens_and_max_text_len(
    sls_settings: AliyunSLSSettings,
) -> None:
    client = make_client(sls_settings)
    project, name = sls_settings.project_name, "workflow_execution"
    client.create_project(project, "pre-existing")
    client.create_logstore(project, name, ttl=30)
    custom = IndexConfig(
        key_config_list={
            "my_custom": IndexKeyConfig(index_type="text", token_list=[","], doc_value=True),
            "status": IndexKeyConfig(index_type="text", token_list=["|"], case_sensitive=False, doc_value=True),
        }
    )
    custom.set_docvalue_max_text_len(8192)
    client.create_index(project, name, custom)

    backend = AliyunSLSBackend(sls_settings)
    dry = backend.provision(dry_run=True)
    change = next(c for c in dry.changes if c.target == f"index:{name}")
    assert change.action == "update" and "add key tenant_id" in change.detail
    assert "keep tuned max_text_len 8192" in change.detail
    ttl_note = next(c for c in dry.changes if c.target == f"logstore:{name}")
    assert ttl_note.action == "keep" and "ttl 30" in ttl_note.detail
    assert "tenant_id" not in _index(sls_settings, name)["keys"]  # dry run changed nothing

    backend.provision()
    index = _index(sls_settings, name)
    assert index["max_text_len"] == 8192
    assert index["keys"]["my_custom"]["token"] == [","]
    assert index["keys"]["status"]["token"] == ["|"]
    assert index["keys"]["tenant_id"]["token"] == list(KEYWORD_TOKENS)


def test_diff_fixes_types_and_analytics_the_queries_need() -> None:
    existing = {
        "keys": {
            "log_version": {"type": "text", "token": [","], "doc_value": True},
            "status": {"type": "text", "token": [","], "doc_value": False},
            "inputs": {"type": "json", "token": [","], "doc_value": True},
        },
        "lastModifyTime": 1,
    }
    diff = diff_index(existing, schema(RecordKind.RUN), 4096)
    assert diff.retyped == ["log_version"] and diff.analytics_enabled == ["status"]
    assert "inputs" in diff.kept  # json and text are interchangeable for payloads
    assert diff.max_text_len_set and "lastModifyTime" not in diff.merged
    assert diff_index(diff.merged, schema(RecordKind.RUN), 4096).changed is False
    assert set(desired_index(schema(RecordKind.RUN), 4096)["keys"]) == set(schema(RecordKind.RUN).fields)


def test_concurrent_starts_all_succeed_and_converge(sls_settings: AliyunSLSSettings) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        try:
            backend = AliyunSLSBackend(sls_settings)
            barrier.wait(timeout=10)
            backend.provision()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not [thread for thread in threads if thread.is_alive()], "a start did not finish within 30 s"
    assert errors == []
    final = AliyunSLSBackend(sls_settings).provision(dry_run=True)
    assert not final.changed
    assert set(_index(sls_settings, "workflow_node_execution")["keys"]) >= set(schema(RecordKind.NODE_EXECUTION).fields)


def test_missing_project_is_not_created_when_not_permitted(sls_settings: AliyunSLSSettings) -> None:
    import pytest

    from flask_difylogstore.errors import ProvisioningError

    with pytest.raises(ProvisioningError, match="does not exist"):
        AliyunSLSBackend(sls_settings, create_project=False).provision()
