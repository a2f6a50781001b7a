"""A local Elasticsearch-compatible HTTP server for tests and development (see docs/local-es-server.md)."""

from __future__ import annotations

from flask_difylogstore.testing.es.faults import Faults
from flask_difylogstore.testing.es.server import LocalElasticsearchServer

__all__ = ["Faults", "LocalElasticsearchServer"]
