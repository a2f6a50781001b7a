"""Stand-in for Dify's ``LogstoreWorkflowExecutionWriter`` (never built once the package is wired)."""

from repositories.workflow._refuse import NeverBuilt


class LogstoreWorkflowExecutionWriter(NeverBuilt):
    pass
