"""Settings problems and summaries as operators read them: by environment name, secrets never shown.

pydantic reports errors by field path (``sls.logstore_ttl``) and echoes the bad input; operators
set ``ALIYUN_SLS_LOGSTORE_TTL`` and must never see a secret in a log. This module translates
between the two. The settings pass their root model in (it is defined above this module), and
fields are looked up on it.
"""

from __future__ import annotations

import re
import typing as t
from pathlib import Path

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo

from flask_difylogstore._settings_sources import env_names
from flask_difylogstore.errors import ConfigProblem

#: ``user:password@`` in a URL (``http://user:pw@host``) or a bare ``user:pw@host`` token.
_URL_CREDENTIALS = re.compile(r"(?P<lead>^|[\s'\"(\[,=]|://)(?P<user>[^\s:/@'\"]*):(?P<password>[^\s@/'\"]+)@")
MASK = "**********"


def mask_url_credentials(text: str) -> str:
    """``text`` with the password of every URL in it masked (``http://user:**********@host``)."""
    if "@" not in text:
        return text
    return _URL_CREDENTIALS.sub(lambda m: f"{m['lead']}{m['user']}:{MASK}@", text)


def mask_secrets(data: t.Any) -> t.Any:
    """Replace every non-empty secret in a dumped settings tree with ``'**********'``, and URL passwords."""
    if isinstance(data, str):
        return mask_url_credentials(data)
    if isinstance(data, dict):
        return {k: mask_secrets(v) for k, v in data.items()}
    if isinstance(data, list):
        return [mask_secrets(v) for v in data]
    if isinstance(data, SecretStr):
        return MASK if data.get_secret_value() else ""
    if isinstance(data, Path):
        return str(data)
    return data


def defaults_for(exc: ValidationError, overrides: dict[str, t.Any], root: type[BaseModel]) -> dict[str, t.Any]:
    """``overrides`` plus the default value of every field of ``root`` that failed validation."""
    result = dict(overrides)
    for error in exc.errors(include_input=False, include_url=False):
        loc = [p for p in error["loc"] if isinstance(p, str)]
        model: type[BaseModel] = root
        target = result
        for i, part in enumerate(loc):
            field = model.model_fields.get(part)
            if field is None:
                break
            if i == len(loc) - 1 or not (
                isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
            ):
                target[part] = field.get_default(call_default_factory=True)
                break
            sub = target.get(part)
            target = target.setdefault(part, {}) if sub is None or isinstance(sub, dict) else {}
            model = field.annotation
    return result


def _field_for(root: type[BaseModel], loc: tuple[int | str, ...]) -> tuple[FieldInfo | None, str]:
    """The field of ``root`` an error location points at (the deepest that exists) and the dotted location."""
    model: type[BaseModel] = root
    field: FieldInfo | None = None
    for part in loc:
        if not isinstance(part, str) or part not in model.model_fields:
            break
        field = model.model_fields[part]
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            model = field.annotation
    return field, ".".join(str(p) for p in loc)


def problems_for_model(exc: ValidationError, root: type[BaseModel]) -> list[ConfigProblem]:
    """Turn pydantic's errors on ``root`` into problems named by environment variable, secrets never echoed."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        field, dotted = _field_for(root, tuple(error["loc"]))
        names = env_names(field) if field else []
        env_name = names[0] if names else dotted
        secret = field is not None and field.annotation is SecretStr
        fix = field.description if field is not None and field.description else "see the configuration reference"
        message = "is invalid" if secret else mask_url_credentials(str(error["msg"]))
        problems.append(ConfigProblem(env_name, message, f"expected: {fix}"))
    return problems
