"""Record schemas: the fields of each record kind and their storage types, derived from the ORM models.

Deriving them from the models in force (Dify's own when running inside Dify, else the package's
copies) means a column Dify adds reaches the SLS index and the Elasticsearch mapping without a
release of this package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from flask_difylogstore.records import (
    META_FIELDS,
    OWNER_FIELDS,
    PAYLOAD_COLUMNS,
    PAYLOAD_RECORD_FIELDS,
    TEXT_COLUMNS,
    TRUNCATION_FLAGS,
    FieldType,
    RecordKind,
)


@dataclass(frozen=True)
class RecordSchema:
    """The fields of one record kind and their storage types."""

    kind: RecordKind
    fields: Mapping[str, FieldType]
    #: Fields fixed when the entity is created; safe to filter on before picking the latest version.
    owner_fields: frozenset[str] = field(default_factory=frozenset)

    @property
    def payload_fields(self) -> list[str]:
        return [name for name, type_ in self.fields.items() if type_ is FieldType.JSON]

    @property
    def datetime_fields(self) -> list[str]:
        return [name for name, type_ in self.fields.items() if type_ is FieldType.DATETIME]


def _column_type(column: sa.Column[Any]) -> FieldType:
    if column.name in PAYLOAD_COLUMNS:
        return FieldType.JSON
    if column.name in TEXT_COLUMNS:
        return FieldType.TEXT
    type_ = column.type
    if isinstance(type_, sa.Boolean):
        return FieldType.BOOL
    if isinstance(type_, sa.Integer):
        return FieldType.LONG
    if isinstance(type_, sa.Float | sa.Numeric):
        return FieldType.DOUBLE
    if isinstance(type_, sa.DateTime):
        return FieldType.DATETIME
    if isinstance(type_, sa.Text):
        return FieldType.TEXT
    return FieldType.KEYWORD


def fields_from_model(model: Any) -> dict[str, FieldType]:
    """Field types derived from an ORM model's columns (so new Dify columns reach the index)."""
    table = model.__table__
    return {column.name: _column_type(column) for column in table.columns}


def build_schemas(models: Mapping[RecordKind, Any]) -> dict[RecordKind, RecordSchema]:
    """The schema of every record kind, from the given ORM models (Dify's own or the package's)."""
    schemas: dict[RecordKind, RecordSchema] = {}
    for kind, model in models.items():
        fields = fields_from_model(model)
        if kind is RecordKind.NODE_EXECUTION:
            fields.update(TRUNCATION_FLAGS)
        fields.update(META_FIELDS)
        schemas[kind] = RecordSchema(kind, fields, OWNER_FIELDS[kind])
    schemas[RecordKind.PAYLOAD] = RecordSchema(
        RecordKind.PAYLOAD, {**PAYLOAD_RECORD_FIELDS, **META_FIELDS}, OWNER_FIELDS[RecordKind.PAYLOAD]
    )
    return schemas


_schemas: dict[RecordKind, RecordSchema] | None = None


def schemas() -> dict[RecordKind, RecordSchema]:
    """The schema of every record kind, derived once from the models in force (Dify's or the package's)."""
    global _schemas
    if _schemas is None:
        from flask_difylogstore.dify import compat

        _schemas = build_schemas({RecordKind(k): m for k, m in compat.record_models().items()})
    return _schemas


def schema(kind: RecordKind) -> RecordSchema:
    """The schema of one record kind."""
    return schemas()[kind]
