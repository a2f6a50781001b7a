"""Stand-in for Dify's ``LogstoreWorkflowRunRepository`` (never built once the package is wired)."""

from repositories.workflow._refuse import NeverBuilt


class LogstoreWorkflowRunRepository(NeverBuilt):
    pass
