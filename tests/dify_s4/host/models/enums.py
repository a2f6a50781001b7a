"""``models.enums``: the enum values Dify stores (the package's copies carry the same values)."""

from flask_difylogstore.dify.enums import CreatorUserRole, WorkflowRunTriggeredFrom

__all__ = ["CreatorUserRole", "WorkflowRunTriggeredFrom"]
