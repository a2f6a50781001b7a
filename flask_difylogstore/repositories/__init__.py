"""Dify's repository contracts over the configured log store, loaded by Dify through dotted paths.

The backend is chosen by settings (``LOGSTORE_BACKEND``), never by class path, so these five
names are all an operator configures.
"""

from flask_difylogstore.repositories.api_node_execution import LogStoreAPIWorkflowNodeExecutionRepository
from flask_difylogstore.repositories.app_log import LogStoreWorkflowAppLogRepository
from flask_difylogstore.repositories.node_execution import LogStoreWorkflowNodeExecutionRepository
from flask_difylogstore.repositories.workflow_execution import LogStoreWorkflowExecutionRepository
from flask_difylogstore.repositories.workflow_run import LogStoreAPIWorkflowRunRepository

__all__ = [
    "LogStoreAPIWorkflowNodeExecutionRepository",
    "LogStoreAPIWorkflowRunRepository",
    "LogStoreWorkflowAppLogRepository",
    "LogStoreWorkflowExecutionRepository",
    "LogStoreWorkflowNodeExecutionRepository",
]
