"""Stand-in for Dify's ``LogstoreWorkflowNodeExecutionRepository`` (never built once the package is wired)."""

from repositories.workflow._refuse import NeverBuilt


class LogstoreWorkflowNodeExecutionRepository(NeverBuilt):
    pass
