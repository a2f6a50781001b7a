"""Shared fixtures for the local Elasticsearch server tests (import them into a test module)."""

from __future__ import annotations

import itertools
import typing as t

import elasticsearch
import pytest
from elasticsearch import Elasticsearch

from flask_difylogstore.testing.es import LocalElasticsearchServer

CLIENT_MAJOR = int(elasticsearch.__version__[0])
_names = itertools.count()


@pytest.fixture(scope="module")
def es_server() -> t.Iterator[LocalElasticsearchServer]:
    with LocalElasticsearchServer(refresh_interval=1.0) as server:
        yield server


@pytest.fixture
def es(es_server: LocalElasticsearchServer) -> t.Iterator[Elasticsearch]:
    """A client that does not retry, so error statuses reach the test directly."""
    es_server.faults.clear()
    client = es_server.client(max_retries=0, retry_on_status=(), request_timeout=30)
    yield client
    client.close()
    es_server.faults.clear()


@pytest.fixture
def index_name(request: pytest.FixtureRequest) -> str:
    """A fresh index name per test, so tests sharing one server never see each other's data."""
    return f"t-{request.node.name.lower().replace('[', '-').replace(']', '')[:40]}-{next(_names)}"
