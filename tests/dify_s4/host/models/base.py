"""``models.base.Base``: the declarative base of the host's tables (the package's own, same table names)."""

from flask_difylogstore.dify.models import Base

__all__ = ["Base"]
