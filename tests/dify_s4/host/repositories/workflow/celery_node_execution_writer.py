"""Stand-in for Dify's ``CeleryWorkflowNodeExecutionRepository`` (never built once the package is wired)."""

from repositories.workflow._refuse import NeverBuilt


class CeleryWorkflowNodeExecutionRepository(NeverBuilt):
    pass
