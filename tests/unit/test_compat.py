"""Which classes the package hands Dify, and how a broken Dify install is told apart from no Dify."""

from __future__ import annotations

import sys
import types

import pytest

from flask_difylogstore.dify import compat
from flask_difylogstore.dify import enums as package_enums


def test_a_missing_module_means_not_there() -> None:
    assert compat.import_optional("no_such_dify_module.workflow") is None


def test_a_module_that_fails_to_import_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the absence of the module asked for means "standalone"; a broken Dify install is an error."""
    broken = types.ModuleType("broken_dify_models")

    def fail(name: str) -> types.ModuleType:
        if name == "broken_dify_models":
            raise ImportError("cannot import name 'Base' from partially initialized module 'models.base'")
        if name == "half_installed":
            raise ModuleNotFoundError("No module named 'sqlalchemy_utils'", name="sqlalchemy_utils")
        return broken

    monkeypatch.setattr(compat.importlib, "import_module", fail)
    with pytest.raises(compat.DifyImportError, match="importing broken_dify_models failed"):
        compat.import_optional("broken_dify_models")
    # A dependency of the module is missing, not the module itself: that is a fault too.
    with pytest.raises(compat.DifyImportError, match="sqlalchemy_utils"):
        compat.import_optional("half_installed")


def test_node_types_are_plain_strings_where_the_engine_says_so() -> None:
    """graphon >= 0.2.1 types node types as ``str``; older lines use an enum (unknown types stay strings)."""
    value = compat.node_type("template-transform")
    assert value == "template-transform"
    assert compat.node_type("a-node-type-from-a-newer-engine") == "a-node-type-from-a-newer-engine"
    if isinstance(compat.NodeType, type):
        assert isinstance(value, compat.NodeType)
    else:
        assert type(value) is str


def test_graphon_entities_are_used_when_installed() -> None:
    if "graphon" not in sys.modules and compat.import_optional("graphon.entities") is None:
        assert compat.ENTITY_SOURCE == "flask_difylogstore.dify"
        assert compat.WorkflowNodeExecutionMetadataKey is package_enums.WorkflowNodeExecutionMetadataKey
        return
    import graphon.entities
    import graphon.enums

    assert compat.ENTITY_SOURCE == "graphon"
    assert compat.WorkflowExecution is graphon.entities.WorkflowExecution
    assert compat.WorkflowNodeExecution is graphon.entities.WorkflowNodeExecution
    assert compat.WorkflowNodeExecutionStatus is graphon.enums.WorkflowNodeExecutionStatus
    # graphon's metadata keys include ones the package's own copy lacks; they round-trip as members.
    assert compat.metadata_keys({"completed_reason": "x"}) == {
        graphon.enums.WorkflowNodeExecutionMetadataKey.COMPLETED_REASON: "x"
    }
