"""flask-difylogstore: keep Dify's workflow logs in Aliyun SLS or Elasticsearch instead of PostgreSQL."""

from flask_difylogstore._version import __version__
from flask_difylogstore.errors import (
    BackendNotInstalledError,
    BackendUnavailableError,
    DifyLogStoreError,
    LogStoreConfigError,
    ProvisioningError,
    RecordRejectedError,
)
from flask_difylogstore.extension import DifyLogStore
from flask_difylogstore.settings import (
    AliyunSLSSettings,
    ElasticsearchSettings,
    LogStoreSettings,
    PipelineSettings,
)

__all__ = [
    "AliyunSLSSettings",
    "BackendNotInstalledError",
    "BackendUnavailableError",
    "DifyLogStore",
    "DifyLogStoreError",
    "ElasticsearchSettings",
    "LogStoreConfigError",
    "LogStoreSettings",
    "PipelineSettings",
    "ProvisioningError",
    "RecordRejectedError",
    "__version__",
]
