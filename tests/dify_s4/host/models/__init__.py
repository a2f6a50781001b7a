"""``models``: the account types Dify's factories take (``Account`` / ``EndUser``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Account:
    """A console account; ``current_tenant_id`` is the workspace it acts in."""

    id: str
    current_tenant_id: str


@dataclass
class EndUser:
    """A web-app end user of one tenant."""

    id: str
    tenant_id: str


__all__ = ["Account", "EndUser"]
