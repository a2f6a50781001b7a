"""Stand-in for Dify's ``LogstoreWorkflowNodeExecutionWriter`` (never built once the package is wired)."""

from repositories.workflow._refuse import NeverBuilt


class LogstoreWorkflowNodeExecutionWriter(NeverBuilt):
    pass
