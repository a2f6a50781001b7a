"""How ``ext_logstore`` makes a Dify of the class-path line (1.9–1.13) build the package's repositories.

The newest line (storage wired in code) is exercised end to end in a host laid out like Dify under
``tests/dify_s4``; these tests cover what needs no such host: class-path settings, unknown shapes and
the standalone case. Dify's ``configs.dify_config`` is stood in by a module placed in ``sys.modules``.
"""

from __future__ import annotations

import sys
import types
import typing as t

import pytest
from flask import Flask

from flask_difylogstore import wiring
from flask_difylogstore.wiring import CLASS_PATH_SETTINGS, PACKAGE_CLASSES, DifyWiringError

DIFY_DEFAULTS = {
    "CORE_WORKFLOW_EXECUTION_REPOSITORY": "core.repositories.sqlalchemy_workflow_execution_repository."
    "SQLAlchemyWorkflowExecutionRepository",
    "CORE_WORKFLOW_NODE_EXECUTION_REPOSITORY": "core.repositories.sqlalchemy_workflow_node_execution_repository."
    "SQLAlchemyWorkflowNodeExecutionRepository",
    "API_WORKFLOW_RUN_REPOSITORY": "repositories.sqlalchemy_api_workflow_run_repository."
    "DifyAPISQLAlchemyWorkflowRunRepository",
    "API_WORKFLOW_NODE_EXECUTION_REPOSITORY": "repositories.sqlalchemy_api_workflow_node_execution_repository."
    "DifyAPISQLAlchemyWorkflowNodeExecutionRepository",
}


def dify_config(monkeypatch: pytest.MonkeyPatch, **values: t.Any) -> t.Any:
    config = types.SimpleNamespace(**values)
    module = types.ModuleType("configs")
    module.dify_config = config  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "configs", module)
    return config


def test_standalone_process_needs_no_wiring() -> None:
    host = wiring.install(Flask(__name__))
    assert host.line == "standalone"
    assert host.classes == PACKAGE_CLASSES


def test_dify_sql_defaults_are_replaced_by_the_package_classes(monkeypatch: pytest.MonkeyPatch) -> None:
    config = dify_config(monkeypatch, **DIFY_DEFAULTS)
    host = wiring.install(Flask(__name__))
    assert host.line == "class-paths"
    for contract, setting in CLASS_PATH_SETTINGS.items():
        assert getattr(config, setting) == PACKAGE_CLASSES[contract]
    assert host.classes == PACKAGE_CLASSES
    assert len(host.notes) == 4


def test_the_four_env_lines_keep_working(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {setting: PACKAGE_CLASSES[contract] for contract, setting in CLASS_PATH_SETTINGS.items()}
    dify_config(monkeypatch, **values)
    host = wiring.install(Flask(__name__))
    assert host.classes == PACKAGE_CLASSES and host.notes == []


def test_another_class_is_refused_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dify's own log-store classes (or any other) contradict LOGSTORE_BACKEND: no silent choice."""
    values = dict(DIFY_DEFAULTS)
    values["API_WORKFLOW_RUN_REPOSITORY"] = (
        "extensions.logstore.repositories.logstore_api_workflow_run_repository.LogstoreAPIWorkflowRunRepository"
    )
    config = dify_config(monkeypatch, **values)
    with pytest.raises(DifyWiringError, match="API_WORKFLOW_RUN_REPOSITORY=extensions.logstore"):
        wiring.install(Flask(__name__))
    assert config.API_WORKFLOW_RUN_REPOSITORY.startswith("extensions.logstore")


def test_a_frozen_config_asks_for_the_env_line(monkeypatch: pytest.MonkeyPatch) -> None:
    class Frozen:
        def __getattr__(self, name: str) -> str:
            if name not in DIFY_DEFAULTS:
                raise AttributeError(name)
            return DIFY_DEFAULTS[name]

        def __setattr__(self, name: str, value: t.Any) -> None:
            raise TypeError("frozen")

    module = types.ModuleType("configs")
    module.dify_config = Frozen()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "configs", module)
    with pytest.raises(DifyWiringError, match="set CORE_WORKFLOW_EXECUTION_REPOSITORY=flask_difylogstore"):
        wiring.install(Flask(__name__))


def test_newest_line_without_its_factory_modules_is_an_unknown_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    dify_config(monkeypatch, WORKFLOW_RUN_STORAGE_BACKEND="rdbms", WORKFLOW_NODE_EXECUTION_STORAGE_BACKEND="rdbms")
    with pytest.raises(DifyWiringError, match="shape this version does not know"):
        wiring.install(Flask(__name__))


def test_celery_mode_is_refused_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    dify_config(monkeypatch, WORKFLOW_RUN_STORAGE_BACKEND="rdbms", WORKFLOW_NODE_EXECUTION_STORAGE_BACKEND="celery")
    with pytest.raises(DifyWiringError, match="WORKFLOW_NODE_EXECUTION_STORAGE_BACKEND=celery"):
        wiring.install(Flask(__name__))


def test_status_summary_says_what_was_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    app = Flask(__name__)
    summary = wiring.host_summary(app)
    assert summary["line"] == "standalone" and "did not run" in summary["notes"][-1]
    app.extensions[wiring.WIRING_KEY] = wiring.install(app)
    assert wiring.host_summary(app)["classes"] == PACKAGE_CLASSES
