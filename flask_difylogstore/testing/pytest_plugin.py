"""pytest fixtures exposing the local servers to anyone's tests (registered via the ``pytest11`` entry point).

``local_sls_server`` and ``local_es_server`` start a server on a free loopback port once per test
session; data persists for the session, so tests should use their own project / index names.
"""

from __future__ import annotations

import typing as t
from collections.abc import Iterator

import pytest

if t.TYPE_CHECKING:
    from flask_difylogstore.testing.es import LocalElasticsearchServer
    from flask_difylogstore.testing.sls import LocalSLSServer


@pytest.fixture(scope="session")
def local_sls_server() -> Iterator[LocalSLSServer]:
    """A running LocalSLSServer for the whole session."""
    from flask_difylogstore.testing.sls import LocalSLSServer

    with LocalSLSServer() as server:
        yield server


@pytest.fixture(scope="session")
def local_es_server() -> Iterator[LocalElasticsearchServer]:
    """A running LocalElasticsearchServer for the whole session."""
    from flask_difylogstore.testing.es import LocalElasticsearchServer

    with LocalElasticsearchServer() as server:
        yield server
