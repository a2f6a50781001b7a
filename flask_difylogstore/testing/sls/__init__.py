"""A local, DuckDB-backed Aliyun SLS server that the real ``aliyun-log-python-sdk`` talks to.

>>> with LocalSLSServer() as server:
...     client = server.client()
...     client.create_project("demo", "local")
"""

from flask_difylogstore.testing.sls.errors import SLSError
from flask_difylogstore.testing.sls.faults import Faults
from flask_difylogstore.testing.sls.server import LocalSLSServer, local_log_client

__all__ = ["Faults", "LocalSLSServer", "SLSError", "local_log_client"]
