"""Fixtures for the local SLS server tests: a fresh server per test, and a project in it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from aliyun.log import (
    GetLogsRequest,
    IndexConfig,
    IndexKeyConfig,
    IndexLineConfig,
    LogClient,
    LogItem,
    PutLogsRequest,
)
from aliyun.log.index_config import IndexJsonKeyConfig

from flask_difylogstore.testing.sls import LocalSLSServer

TOKENS = [
    ",",
    " ",
    "'",
    '"',
    ";",
    "=",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "?",
    "@",
    "&",
    "<",
    ">",
    "/",
    ":",
    "\n",
    "\t",
]


@pytest.fixture
def sls_server() -> Iterator[LocalSLSServer]:
    with LocalSLSServer() as server:
        yield server


@pytest.fixture
def sls_client(sls_server: LocalSLSServer) -> LogClient:
    return sls_server.client()


@pytest.fixture
def project(sls_client: LogClient) -> str:
    name = "p-" + uuid.uuid4().hex[:10]
    sls_client.create_project(name, "test project")
    return name


def text_key(**kw: Any) -> IndexKeyConfig:
    return IndexKeyConfig(token_list=TOKENS, index_type="text", doc_value=True, **kw)


def make_index(keys: dict[str, str], *, max_text_len: int = 0, line: bool = True) -> IndexConfig:
    """An index config like the project's: text keys with the usual delimiters, typed others."""
    key_configs = {
        name: IndexKeyConfig(
            token_list=TOKENS if kind in ("text", "json") else None,
            index_type=kind,
            doc_value=True,
            json_key_config=IndexJsonKeyConfig() if kind == "json" else None,
        )
        for name, kind in keys.items()
    }
    config = IndexConfig(
        line_config=IndexLineConfig(token_list=TOKENS) if line else None,
        key_config_list=key_configs,
        scan_index=True,
    )
    if max_text_len:
        config.set_docvalue_max_text_len(max_text_len)
    return config


def make_logstore(client: LogClient, project: str, name: str, keys: dict[str, str], **index_kw: Any) -> str:
    client.create_logstore(project, name, ttl=3650, shard_count=2)
    client.create_index(project, name, make_index(keys, **index_kw))
    return name


def put(
    client: LogClient,
    project: str,
    logstore: str,
    rows: list[dict[str, str]],
    *,
    at: int | None = None,
    **kw: Any,
) -> None:
    now = at if at is not None else int(time.time())
    items = [LogItem(now, list(row.items())) for row in rows]
    client.put_logs(PutLogsRequest(project, logstore, logitems=items, **kw))


def query(
    client: LogClient,
    project: str,
    logstore: str,
    q: str,
    *,
    start: int = 0,
    end: int | None = None,
    **kw: Any,
) -> list[dict[str, str]]:
    end = end if end is not None else int(time.time()) + 3600
    resp = client.get_logs(GetLogsRequest(project, logstore, start, end, query=q, **kw))
    assert resp.is_completed()
    return [dict(log.get_contents()) for log in resp.get_logs()]
