"""Observing the SLS SDK's transport in tests: every HTTP attempt, and every sleep of its retry loop.

``aliyun.log.logclient.LogClient._send`` retries a 5xx or a connection error up to ten times, calling
``_sendRequest`` once per attempt and ``time.sleep(1)`` between attempts (aliyun-log-python-sdk,
``aliyun/log/logclient.py``). Counting those two calls shows whether a request waited for a retry, with no clock.
"""

from __future__ import annotations

import time
import typing as t
from urllib.parse import urlsplit

import pytest


class Sleeps:
    """Stands in for the ``time`` module inside one module: records sleeps instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.calls.append(seconds)

    def __getattr__(self, name: str) -> t.Any:
        return getattr(time, name)


def record_sleeps(module: t.Any, monkeypatch: pytest.MonkeyPatch) -> Sleeps:
    """Replace ``module.time`` for the test; ``module`` must use ``time.sleep`` through ``import time``."""
    sleeps = Sleeps()
    monkeypatch.setattr(module, "time", sleeps)
    return sleeps


def record_sdk_sleeps(monkeypatch: pytest.MonkeyPatch) -> Sleeps:
    """The sleeps of the SDK's own retry loop."""
    import aliyun.log.logclient as logclient

    return record_sleeps(logclient, monkeypatch)


class Attempts:
    """The ``(method, path)`` of every HTTP attempt one client makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def gets(self) -> int:
        """GetLogs attempts (``POST /logstores/<name>/logs``)."""
        return sum(1 for method, path in self.calls if method == "POST" and path.endswith("/logs"))

    def puts(self) -> int:
        """PutLogs attempts (``POST /logstores/<name>/shards/lb``)."""
        return sum(1 for method, path in self.calls if method == "POST" and path.endswith("/shards/lb"))


def count_attempts(client: t.Any, monkeypatch: pytest.MonkeyPatch) -> Attempts:
    attempts = Attempts()
    send = client._sendRequest

    def counting(method: str, url: str, *args: t.Any, **kwargs: t.Any) -> t.Any:
        attempts.calls.append((method, urlsplit(url).path))
        return send(method, url, *args, **kwargs)

    monkeypatch.setattr(client, "_sendRequest", counting)
    return attempts
