"""Local SLS- and Elasticsearch-compatible servers for tests, development and the demo.

They are real HTTP servers on a loopback port that the official ``aliyun-log-python-sdk`` and
``elasticsearch`` clients talk to unmodified. They are development and test tools, never a
production store. Imports are lazy so that using one server does not require the other's extras.
"""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from flask_difylogstore.testing.es import LocalElasticsearchServer
    from flask_difylogstore.testing.sls import LocalSLSServer

__all__ = ["LocalElasticsearchServer", "LocalSLSServer"]


def __getattr__(name: str) -> t.Any:
    if name == "LocalSLSServer":
        from flask_difylogstore.testing.sls import LocalSLSServer

        return LocalSLSServer
    if name == "LocalElasticsearchServer":
        from flask_difylogstore.testing.es import LocalElasticsearchServer

        return LocalElasticsearchServer
    raise AttributeError(name)
