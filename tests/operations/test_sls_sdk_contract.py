"""The SLS backend's reliance on private names of ``aliyun-log-python-sdk`` fails loudly when they change.

Follows the SDK's own source (aliyun/aliyun-log-python-sdk, ``aliyun/log/logclient.py``:
``LogClient.__init__`` sets ``_isRowIp``, ``_source``, ``_logHost``, ``_user_agent``; ``put_log_raw``
calls ``log_group.SerializeToString()``; every call goes through ``_sendRequest``).
"""

from __future__ import annotations

import tomllib
import typing as t
from importlib.metadata import version
from pathlib import Path

import pytest
from aliyun.log import LogClient
from packaging.requirements import Requirement

from flask_difylogstore.backends.aliyun_sls import client as sls_client
from flask_difylogstore.backends.aliyun_sls.client import (
    SDK_PRIVATE_ATTRIBUTES,
    SDKContractError,
    check_sdk,
    sdk_contract_problems,
)


def test_installed_sdk_has_every_name_the_backend_uses() -> None:
    assert sdk_contract_problems() == []


def test_installed_sdk_is_inside_the_pinned_range() -> None:
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    pinned = [Requirement(r) for r in project["optional-dependencies"]["sls"]]
    sdk = next(r for r in pinned if r.name == "aliyun-log-python-sdk")
    assert any(spec.operator == "<" for spec in sdk.specifier), "the SDK needs an upper version bound"
    assert sdk.specifier.contains(version("aliyun-log-python-sdk"))
    assert str(sdk.specifier) == ",".join(sorted(sls_client.TESTED_SDK_VERSIONS.split(",")))


@pytest.mark.parametrize("name", SDK_PRIVATE_ATTRIBUTES)
def test_a_missing_private_attribute_is_named(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    original = LogClient.__init__

    def without(self: LogClient, *args: t.Any, **kwargs: t.Any) -> None:
        original(self, *args, **kwargs)
        delattr(self, name)

    monkeypatch.setattr(LogClient, "__init__", without)
    check_sdk.cache_clear()
    with pytest.raises(SDKContractError, match=f"LogClient.{name} is missing"):
        check_sdk()
    check_sdk.cache_clear()


def test_a_changed_send_request_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    def _sendRequest(self: t.Any, method: str, url: str, params: t.Any, body: t.Any, headers: t.Any) -> None:
        return None

    monkeypatch.setattr(LogClient, "_sendRequest", _sendRequest)
    assert any("_sendRequest" in p for p in sdk_contract_problems())
    monkeypatch.delattr(LogClient, "_sendRequest")
    assert "LogClient._sendRequest is missing" in sdk_contract_problems()


def test_the_backend_refuses_an_incompatible_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    from flask_difylogstore.settings import AliyunSLSSettings

    monkeypatch.delattr(LogClient, "put_log_raw")
    check_sdk.cache_clear()
    settings = AliyunSLSSettings(
        access_key_id="id", access_key_secret="s", endpoint="127.0.0.1:1", region="r", project_name="p"
    )  # type: ignore[arg-type]
    with pytest.raises(SDKContractError, match=r"put_log_raw is missing.*install 'aliyun-log-python-sdk>="):
        sls_client.make_client(settings)
    check_sdk.cache_clear()


def test_connect_and_read_timeouts_are_passed_down() -> None:
    """requests takes ``timeout=(connect, read)``; the SDK hands ``LogClient._timeout`` to it unchanged."""
    from flask_difylogstore.settings import AliyunSLSSettings

    settings = AliyunSLSSettings(
        access_key_id="id",
        access_key_secret="s",  # type: ignore[arg-type]
        endpoint="127.0.0.1:1",
        region="r",
        project_name="p",
        check_connectivity_timeout=2.5,
    )
    client = sls_client.make_client(settings, timeout=30)
    assert t.cast(t.Any, client)._timeout == (2.5, 30) and client.timeout == 30
    probe = sls_client.make_client(settings, timeout=2.5)  # the ping's client: one budget for both
    assert t.cast(t.Any, probe)._timeout == (2.5, 2.5) and probe.timeout == 2.5
