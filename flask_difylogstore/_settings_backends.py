"""Which ``LOGSTORE_BACKEND`` values the settings accept: built-in names, registered names, dotted paths.

The settings sit below the backends and must not import them, yet a name given to
:func:`flask_difylogstore.backends.register_backend` has to pass the ``LOGSTORE_BACKEND`` check.
So the registry records each name here, and the settings read this set instead of the registry.
"""

from __future__ import annotations

KNOWN_BACKENDS = ("none", "aliyun_sls", "elasticsearch", "memory")

_REGISTERED_NAMES: set[str] = set()


def add_backend_name(name: str) -> None:
    """Accept ``name`` as a backend from now on (called by the backend registry)."""
    _REGISTERED_NAMES.add(name)


def remove_backend_name(name: str) -> None:
    """Stop accepting a registered ``name`` (built-in names stay accepted)."""
    _REGISTERED_NAMES.discard(name)


def check_backend_name(value: str) -> str:
    """``value`` normalised (built-in names lower-cased), or :class:`ValueError` when no backend has it.

    Only the form is checked for a dotted path: importing it is the backend registry's job.
    """
    value = value.strip()
    if value.lower() in KNOWN_BACKENDS:
        return value.lower()
    if value in _REGISTERED_NAMES:
        return value
    if "." in value and all(part.isidentifier() for part in value.split(".")):
        return value
    raise ValueError(f"unknown backend {value!r}")
