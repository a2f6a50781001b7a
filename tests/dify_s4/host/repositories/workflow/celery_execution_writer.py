"""Stand-in for Dify's ``CeleryWorkflowExecutionRepository`` (never built once the package is wired)."""

from repositories.workflow._refuse import NeverBuilt


class CeleryWorkflowExecutionRepository(NeverBuilt):
    pass
