"""``configs.dify_config``: a mutable stand-in for Dify's settings object (tests change it in place)."""

from __future__ import annotations

import typing as t


class DifyConfig:
    """The settings the S4 storage wiring and Dify's own ``ext_logstore`` read."""

    WORKFLOW_RUN_STORAGE_BACKEND: t.Literal["rdbms", "celery", "logstore"] = "rdbms"
    WORKFLOW_NODE_EXECUTION_STORAGE_BACKEND: t.Literal["rdbms", "celery", "logstore"] = "rdbms"
    ALIYUN_SLS_ACCESS_KEY_ID: str | None = None
    ALIYUN_SLS_ACCESS_KEY_SECRET: str | None = None
    ALIYUN_SLS_ENDPOINT: str | None = None
    ALIYUN_SLS_REGION: str | None = None
    ALIYUN_SLS_PROJECT_NAME: str | None = None
    ALIYUN_SLS_LOGSTORE_TTL: int = 365
    ALIYUN_SLS_CHECK_CONNECTIVITY_TIMEOUT: int = 30
    LOGSTORE_DUAL_WRITE_ENABLED: bool = False
    LOGSTORE_DUAL_READ_ENABLED: bool = True
    LOGSTORE_ENABLE_PUT_GRAPH_FIELD: bool = True


dify_config = DifyConfig()
