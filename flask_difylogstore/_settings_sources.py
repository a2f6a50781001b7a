"""The flat environment behind the nested settings.

Operators configure the package with flat names (``ALIYUN_SLS_*``, ``ELASTICSEARCH_*``,
``LOGSTORE_*``) while :class:`~flask_difylogstore.settings.LogStoreSettings` groups its fields
in sections. Each field declares its environment names with :func:`env`, and
:class:`_FlatEnvSource` maps those names onto the sections, so the two never have to agree.
"""

from __future__ import annotations

import typing as t

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource


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
