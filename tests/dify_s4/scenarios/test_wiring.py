"""Wiring: ``flask_difylogstore.ext_logstore.init_app`` makes the S4 factories build the package's classes.

Follows Dify's ``storage_contracts/test_behavior.py::test_every_configured_backend_has_a_contract_driver``
and ``::test_independent_configuration_round_trips_run_and_nodes`` (every run/node mode pairing selects
one implementation), and Dify's ``extensions/ext_logstore.py`` (``is_enabled`` / ``init_app``).
"""

from __future__ import annotations

import types
import typing as t

import pytest
from configs import dify_config
from extensions import ext_logstore as difys_ext_logstore
from extensions.application_services import workflow_storage, workflow_writers
from flask import Flask

from flask_difylogstore import ext_logstore
from flask_difylogstore.repositories import (
    LogStoreAPIWorkflowNodeExecutionRepository,
    LogStoreAPIWorkflowRunRepository,
    LogStoreWorkflowExecutionRepository,
    LogStoreWorkflowNodeExecutionRepository,
)
from flask_difylogstore.wiring import DifyWiringError

from .conftest import HostFactory
from .harness import node, run

PACKAGE = {
    "run_writer": LogStoreWorkflowExecutionRepository,
    "node_writer": LogStoreWorkflowNodeExecutionRepository,
    "runs": LogStoreAPIWorkflowRunRepository,
    "nodes": LogStoreAPIWorkflowNodeExecutionRepository,
}


def sls_in_dify_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dify's own ``ALIYUN_SLS_*`` settings, all set (what makes Dify's ext_logstore want to provision)."""
    for name, value in {
        "ALIYUN_SLS_ACCESS_KEY_ID": "ak",
        "ALIYUN_SLS_ACCESS_KEY_SECRET": "secret",
        "ALIYUN_SLS_ENDPOINT": "127.0.0.1:1",
        "ALIYUN_SLS_REGION": "cn-hangzhou",
        "ALIYUN_SLS_PROJECT_NAME": "dify-own",
    }.items():
        monkeypatch.setattr(dify_config, name, value)


@pytest.mark.parametrize(
    ("run_mode", "node_mode"),
    [("rdbms", "rdbms"), ("logstore", "logstore"), ("logstore", "rdbms"), ("rdbms", "logstore")],
)
def test_every_s4_factory_builds_the_package_class(make_host: HostFactory, run_mode: str, node_mode: str) -> None:
    host = make_host(run_mode=run_mode, node_mode=node_mode)
    wiring = host.app.extensions[ext_logstore.WIRING_KEY]
    assert wiring.line == "in-code"
    assert set(wiring.classes) == {
        "workflow_execution",
        "workflow_node_execution",
        "api_workflow_run",
        "api_workflow_node_execution",
    }
    with host.app.app_context():
        for factory, cls in PACKAGE.items():
            assert type(getattr(host, factory)()) is cls, factory
        # And what they build works: a round trip through the factories, whatever the modes.
        host.run_writer().save(run())
        host.node_writer().save(node())
        host.settle()
        stored_run = host.runs().get_workflow_run_by_id("tenant-1", "app-1", "run-1")
        stored_node = host.nodes().get_execution_by_id("execution-1", "tenant-1")
        assert stored_run is not None and stored_run.outputs_dict == {"answer": [1, 2]}
        assert stored_node is not None and stored_node.outputs_dict == {"answer": [1, 2]}


@pytest.mark.parametrize("setting", ["WORKFLOW_RUN_STORAGE_BACKEND", "WORKFLOW_NODE_EXECUTION_STORAGE_BACKEND"])
def test_celery_mode_is_refused_naming_the_setting(make_host: HostFactory, setting: str) -> None:
    modes = {"run_mode": "rdbms", "node_mode": "rdbms"}
    modes["run_mode" if setting == "WORKFLOW_RUN_STORAGE_BACKEND" else "node_mode"] = "celery"
    with pytest.raises(DifyWiringError, match=f"{setting}=celery"):
        make_host(**modes)
    # Nothing was rebound: the host still builds its own SQL classes.
    assert (
        vars(workflow_writers)["SQLAlchemyWorkflowExecutionRepository"].__module__
        == "repositories.workflow.execution_writer"
    )


def test_logstore_mode_disables_difys_own_ext_logstore(make_host: HostFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    sls_in_dify_config(monkeypatch)
    monkeypatch.setattr(dify_config, "WORKFLOW_RUN_STORAGE_BACKEND", "logstore")
    assert difys_ext_logstore.is_enabled() is True, "precondition: Dify's extension would provision"
    provisioned = len(difys_ext_logstore.PROVISIONED)
    host = make_host(run_mode="logstore", node_mode="rdbms")
    assert any("ext_logstore is disabled" in note for note in host.app.extensions[ext_logstore.WIRING_KEY].notes)
    assert difys_ext_logstore.is_enabled() is False
    later = Flask("dify-later")
    difys_ext_logstore.init_app(later)
    assert "logstore" not in later.extensions
    assert len(difys_ext_logstore.PROVISIONED) == provisioned


def test_rdbms_mode_leaves_difys_ext_logstore_alone(make_host: HostFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    sls_in_dify_config(monkeypatch)
    init_app = difys_ext_logstore.init_app
    make_host(run_mode="rdbms", node_mode="rdbms")
    assert difys_ext_logstore.init_app is init_app
    assert difys_ext_logstore.is_enabled() is False  # Dify's own rule: no mode is logstore


def test_logstore_mode_after_difys_ext_logstore_already_ran_is_refused(
    make_host: HostFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    sls_in_dify_config(monkeypatch)
    monkeypatch.setattr(dify_config, "WORKFLOW_NODE_EXECUTION_STORAGE_BACKEND", "logstore")

    def dify_first(app: Flask) -> None:
        difys_ext_logstore.init_app(app)  # Dify's extension listed before the package's
        assert "logstore" in app.extensions

    with pytest.raises(DifyWiringError, match="already provisioned"):
        make_host(run_mode="rdbms", node_mode="logstore", before_init=dify_first)


def _construct_other_class(
    session_factory: t.Any, tenant_id: str, user: t.Any, app_id: str, triggered_from: t.Any
) -> t.Any:
    return RenamedWorkflowExecutionRepository(  # type: ignore[name-defined]  # noqa: F821 - resolved in the factory module
        session_factory=session_factory, tenant_id=tenant_id, user=user, app_id=app_id, triggered_from=triggered_from
    )


@pytest.mark.parametrize("module", [workflow_writers, workflow_storage], ids=["writers", "storage"])
def test_a_factory_of_an_unknown_shape_is_refused(
    make_host: HostFactory, monkeypatch: pytest.MonkeyPatch, module: types.ModuleType
) -> None:
    """A Dify whose factory constructs other class names: init_app raises instead of leaving Dify on SQL."""
    name = (
        "create_workflow_execution_repository" if module is workflow_writers else "create_api_workflow_run_repository"
    )
    changed = types.FunctionType(_construct_other_class.__code__, module.__dict__, name)
    monkeypatch.setattr(module, name, changed)
    with pytest.raises(DifyWiringError, match=f"{name} no longer constructs"):
        make_host()
    # Checked before anything is rebound: every factory still names the host's own classes.
    assert vars(workflow_writers)["SQLAlchemyWorkflowNodeExecutionRepository"].__module__.startswith("repositories.")
    assert vars(workflow_storage)["DifyAPISQLAlchemyWorkflowRunRepository"].__module__.startswith("repositories.")


def test_the_package_sees_itself_inside_dify() -> None:
    """compat decided at import time: Dify's models, the host's SQL repositories at S4 paths, control rows on,
    and entities from graphon when it is installed (Python 3.12), else the package's own."""
    import importlib.util

    from flask_difylogstore.dify import compat
    from flask_difylogstore.repositories.relational_classes import control_rows_required, relational_repositories

    assert compat.DIFY_AVAILABLE is True
    expected = "graphon" if importlib.util.find_spec("graphon") is not None else "flask_difylogstore.dify"
    assert expected == compat.ENTITY_SOURCE
    assert control_rows_required() is True
    assert {key: cls.__module__ for key, cls in relational_repositories().items() if key != "workflow_app_log"} == {
        "workflow_execution": "repositories.workflow.execution_writer",
        "workflow_node_execution": "repositories.workflow.node_execution_writer",
        "api_workflow_run": "repositories.workflow.run_repository",
        "api_workflow_node_execution": "repositories.workflow.node_execution_repository",
    }


def test_without_a_log_store_backend_nothing_is_rewired(
    make_host: HostFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``LOGSTORE_BACKEND`` unset: the package stays out of the way (Dify keeps its own storage and extension)."""
    sls_in_dify_config(monkeypatch)
    host = make_host(run_mode="logstore", node_mode="logstore", LOGSTORE_BACKEND="none")
    wiring = host.app.extensions[ext_logstore.WIRING_KEY]
    assert wiring.line == "in-code" and wiring.classes == {}
    assert vars(workflow_writers)["LogstoreWorkflowExecutionWriter"].__module__.startswith("repositories.")
    assert vars(workflow_storage)["LogstoreWorkflowRunRepository"].__module__.startswith("repositories.")
    assert difys_ext_logstore.is_enabled() is True
