"""The Elasticsearch 8/9 backend (``LOGSTORE_BACKEND=elasticsearch``); needs ``flask-difylogstore[es]``."""

from __future__ import annotations

from flask_difylogstore.backends.elasticsearch.backend import ElasticsearchBackend

__all__ = ["ElasticsearchBackend"]
