"""Dify's own ``extensions.ext_logstore``: provisions SLS when ``ALIYUN_SLS_*`` are set and a mode is ``logstore``.

The stand-in records that it provisioned in ``app.extensions["logstore"]``, as Dify's does.
"""

from __future__ import annotations

import typing as t

from configs import dify_config

#: How many times this extension provisioned (tests read it).
PROVISIONED: list[str] = []


def is_enabled() -> bool:
    sls_vars_set = all(
        (
            dify_config.ALIYUN_SLS_ACCESS_KEY_ID,
            dify_config.ALIYUN_SLS_ACCESS_KEY_SECRET,
            dify_config.ALIYUN_SLS_ENDPOINT,
            dify_config.ALIYUN_SLS_REGION,
            dify_config.ALIYUN_SLS_PROJECT_NAME,
        )
    )
    if not sls_vars_set:
        return False
    return "logstore" in (dify_config.WORKFLOW_RUN_STORAGE_BACKEND, dify_config.WORKFLOW_NODE_EXECUTION_STORAGE_BACKEND)


def init_app(app: t.Any) -> None:
    PROVISIONED.append(str(dify_config.ALIYUN_SLS_PROJECT_NAME))
    app.extensions["logstore"] = {"project": dify_config.ALIYUN_SLS_PROJECT_NAME}
