"""Aliyun Simple Log Service (SLS) backend (needs the ``sls`` extra: ``aliyun-log-python-sdk``)."""

from flask_difylogstore.backends.aliyun_sls.backend import AliyunSLSBackend

__all__ = ["AliyunSLSBackend"]
