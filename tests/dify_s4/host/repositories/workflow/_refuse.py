"""Stand-ins for Dify's own log-store and Celery repositories: building one is a wiring failure."""

from __future__ import annotations

import typing as t


class NeverBuilt:
    """Raises when constructed: once flask-difylogstore is wired, Dify must build the package's class."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        raise AssertionError(f"{type(self).__name__} was constructed; the host is not wired to flask-difylogstore")
