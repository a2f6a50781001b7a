"""The flat environment behind the nested settings.

Operators configure the package with flat names (``ALIYUN_SLS_*``, ``ELASTICSEARCH_*``,
``LOGSTORE_*``) while :class:`~flask_difylogstore.settings.LogStoreSettings` groups its fields
in sections. Each field declares its environment names with :func:`env`, and
:class:`_FlatEnvSource` maps those names onto the sections, so the two never have to agree.

The values themselves are read by pydantic-settings' own sources: the process environment
(``EnvSettingsSource``), ``.env`` files (``DotEnvSettingsSource``) and a secrets directory
(``SecretsSettingsSource``: one file per variable, named like it, as Docker and Kubernetes mount
secrets under ``/run/secrets``).
"""

from __future__ import annotations

import os
import typing as t
from pathlib import Path

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
)

#: Where Docker (``docker secret``, compose ``secrets:``) and many Kubernetes setups mount secrets.
DEFAULT_SECRETS_DIR = Path("/run/secrets")
SECRETS_DIR_ENV = "LOGSTORE_SECRETS_DIR"


def env(*names: str) -> dict[str, t.Any]:
    """Field metadata naming the environment variables a field is read from (first wins)."""
    return {"env": list(names)}


def env_names(field: FieldInfo) -> list[str]:
    """The environment names declared for ``field`` (empty for fields read only from code)."""
    extra = field.json_schema_extra
    if isinstance(extra, dict):
        names = extra.get("env", [])
        if isinstance(names, list):
            return [str(n) for n in names]
    return []


class _FlatEnvSource(PydanticBaseSettingsSource):
    """Reads flat environment names into the nested sections of :class:`LogStoreSettings`."""

    def __init__(self, settings_cls: type[BaseSettings], values: t.Mapping[str, str | None]) -> None:
        super().__init__(settings_cls)
        self._values = {k.upper(): v for k, v in values.items() if v not in (None, "")}

    @property
    def raw(self) -> dict[str, str | None]:
        """The flat values read, by upper-case name."""
        return dict(self._values)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[t.Any, str, bool]:
        return None, field_name, False

    def _lookup(self, field: FieldInfo) -> str | None:
        for name in env_names(field):
            if name.upper() in self._values:
                return self._values[name.upper()]
        return None

    def __call__(self) -> dict[str, t.Any]:
        data: dict[str, t.Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            section = field.annotation
            if isinstance(section, type) and issubclass(section, BaseModel):
                sub = {
                    sub_name: v
                    for sub_name, sub_field in section.model_fields.items()
                    if (v := self._lookup(sub_field)) is not None
                }
                if sub:
                    data[name] = sub
            elif (value := self._lookup(field)) is not None:
                data[name] = value
        return data


def declared_env_names(settings_cls: type[BaseSettings]) -> list[str]:
    """Every environment name declared by the fields of ``settings_cls`` and its sections."""
    names: list[str] = []
    for field in settings_cls.model_fields.values():
        section = field.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            for sub_field in section.model_fields.values():
                names.extend(env_names(sub_field))
        else:
            names.extend(env_names(field))
    return names


def environment_source(settings_cls: type[BaseSettings]) -> _FlatEnvSource:
    """The process environment, read by pydantic-settings (names case-insensitive)."""
    return _FlatEnvSource(settings_cls, EnvSettingsSource(settings_cls, case_sensitive=False).env_vars)


def dotenv_source(settings_cls: type[BaseSettings], env_file: t.Any) -> _FlatEnvSource:
    """``.env`` files, read by pydantic-settings (missing files are skipped)."""
    files = [env_file] if isinstance(env_file, str | os.PathLike) else list(env_file or [])
    existing: list[Path | str] = [Path(path) for path in files if Path(path).is_file()]
    if not existing:
        return _FlatEnvSource(settings_cls, {})
    source = DotEnvSettingsSource(settings_cls, env_file=existing, case_sensitive=False)
    return _FlatEnvSource(settings_cls, source.env_vars)


def secrets_dir_for(configured: t.Any, *lookups: t.Mapping[str, str | None]) -> Path | None:
    """The secrets directory: configured in code, else ``LOGSTORE_SECRETS_DIR``, else ``/run/secrets`` if present."""
    if configured:
        return Path(configured)
    for values in lookups:
        for key, value in values.items():
            if key.upper() == SECRETS_DIR_ENV and value:
                return Path(value)
    return DEFAULT_SECRETS_DIR if DEFAULT_SECRETS_DIR.is_dir() else None


def secrets_source(settings_cls: type[BaseSettings], secrets_dir: Path | None) -> _FlatEnvSource:
    """One file per variable in ``secrets_dir`` (``ALIYUN_SLS_ACCESS_KEY_SECRET``...), found as pydantic-settings does.

    Only the declared names are looked up, so other files in the directory are never read.
    """
    if secrets_dir is None:
        return _FlatEnvSource(settings_cls, {})
    source = SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir, case_sensitive=False)
    source()  # pydantic-settings' checks: a missing directory warns, a file in its place is an error
    values: dict[str, str | None] = {}
    if secrets_dir.is_dir():
        for name in declared_env_names(settings_cls):
            path = SecretsSettingsSource.find_case_path(secrets_dir, name, case_sensitive=False)
            if path is not None and path.is_file():
                values[name] = path.read_text(encoding="utf-8").strip()
    return _FlatEnvSource(settings_cls, values)
