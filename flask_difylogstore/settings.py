"""Typed configuration, read from the environment and ``.env`` with pydantic-settings.

Every variable keeps the name operators already use (the upstream SLS plugin's ``ALIYUN_SLS_*`` and
``LOGSTORE_*`` names, the Elasticsearch proposal's ``ELASTICSEARCH_*`` names), so one Dify ``.env``
configures both Dify and this package. The settings are grouped in sections (one per backend, plus
the write pipeline) while the environment stays flat: each field declares the environment names it
is read from, and :mod:`flask_difylogstore._settings_sources` maps them onto the sections.

Precedence, highest first: keyword arguments, the process environment, the ``.env`` file, the
secrets directory (``LOGSTORE_SECRETS_DIR``, else ``/run/secrets`` when it exists), defaults.
This is the only module of the package that reads the environment. The environment-name helpers
(``env``, ``env_names``), the error mapping (``mask_secrets``; ``problems_from_validation_error``
binds it to :class:`LogStoreSettings`) and the accepted backend names live in private modules below
this one and are re-exported here, where callers import them from.
"""

from __future__ import annotations

import typing as t
from datetime import datetime
from pathlib import Path

import platformdirs
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from flask_difylogstore._settings_backends import KNOWN_BACKENDS as KNOWN_BACKENDS
from flask_difylogstore._settings_backends import check_backend_name
from flask_difylogstore._settings_errors import defaults_for, problems_for_model
from flask_difylogstore._settings_errors import mask_secrets as mask_secrets
from flask_difylogstore._settings_errors import mask_url_credentials as mask_url_credentials
from flask_difylogstore._settings_sections import AliyunSLSSettings as AliyunSLSSettings
from flask_difylogstore._settings_sections import ElasticsearchSettings as ElasticsearchSettings
from flask_difylogstore._settings_sections import PipelineSettings as PipelineSettings
from flask_difylogstore._settings_sources import dotenv_source, environment_source, secrets_dir_for, secrets_source
from flask_difylogstore._settings_sources import env as env
from flask_difylogstore._settings_sources import env_names as env_names
from flask_difylogstore.errors import ConfigProblem, LogStoreConfigError


def _default_spool_dir() -> Path:
    return Path(platformdirs.user_data_dir("flask-difylogstore", appauthor=False)) / "spool"


class LogStoreSettings(BaseSettings):
    """All settings of flask-difylogstore.

    Build it from the environment with :meth:`load` (which raises :class:`LogStoreConfigError`),
    or pass field values directly in tests: ``LogStoreSettings(backend="aliyun_sls", sls=...)``.
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    backend: str = Field(
        "none",
        description="`aliyun_sls`, `elasticsearch`, `none`, `memory` (in-process, for tests and development), "
        "or the dotted path of a third-party backend class.",
        json_schema_extra=env("LOGSTORE_BACKEND"),
    )
    elasticsearch_enabled: bool = Field(
        False,
        description="`true` selects the Elasticsearch backend when `LOGSTORE_BACKEND` is not set.",
        json_schema_extra=env("ELASTICSEARCH_ENABLED"),
    )
    dual_write_enabled: bool = Field(
        False,
        description="Also write every record to the relational database (grey migration).",
        json_schema_extra=env("LOGSTORE_DUAL_WRITE_ENABLED"),
    )
    dual_read_enabled: bool = Field(
        True,
        description="Reads fall back to the relational database for data that predates the log store.",
        json_schema_extra=env("LOGSTORE_DUAL_READ_ENABLED"),
    )
    cutover_at: datetime | None = Field(
        None,
        description="UTC time from which every record is in the log store; older data is read from the "
        "relational database when dual read is on. Unset: decided per entity.",
        json_schema_extra=env("LOGSTORE_CUTOVER_AT"),
    )
    auto_provision: bool = Field(
        True,
        description="Create or update logstores, indexes and templates at startup.",
        json_schema_extra=env("LOGSTORE_AUTO_PROVISION"),
    )
    startup_strict: bool = Field(
        False,
        description="Raise at startup when the backend cannot be reached or provisioned; otherwise log, mark "
        "unhealthy and retry in the background.",
        json_schema_extra=env("LOGSTORE_STARTUP_STRICT"),
    )
    startup_timeout: float = Field(
        10.0,
        gt=0,
        le=600,
        description="With `LOGSTORE_STARTUP_STRICT`, longest time startup waits for provisioning before it "
        "raises (a failed attempt raises at once); a lenient startup waits at most 2 s of it.",
        json_schema_extra=env("LOGSTORE_STARTUP_TIMEOUT"),
    )
    spool_dir: Path = Field(
        default_factory=_default_spool_dir,
        description="Durable local spool for records the backend has not acknowledged yet.",
        json_schema_extra=env("LOGSTORE_SPOOL_DIR"),
    )
    secrets_directory: Path | None = Field(
        None,
        description="Directory of secret files, one per variable and named like it (Docker / Kubernetes "
        "secrets, e.g. `/run/secrets/ALIYUN_SLS_ACCESS_KEY_SECRET`); `/run/secrets` when unset and present. "
        "The environment and `.env` win over it.",
        json_schema_extra=env("LOGSTORE_SECRETS_DIR"),
    )
    enable_put_graph_field: bool = Field(
        True,
        description="Store the workflow `graph` on runs.",
        json_schema_extra=env("LOGSTORE_ENABLE_PUT_GRAPH_FIELD"),
    )
    truncation_max_size: int = Field(
        1024_000,
        ge=1024,
        description="Payloads larger than this (bytes) are stored truncated + offloaded.",
        json_schema_extra=env("WORKFLOW_VARIABLE_TRUNCATION_MAX_SIZE"),
    )
    truncation_string_length: int = Field(
        100_000,
        ge=16,
        description="Longest string kept in a truncated payload.",
        json_schema_extra=env("WORKFLOW_VARIABLE_TRUNCATION_STRING_LENGTH"),
    )
    truncation_array_length: int = Field(
        1000,
        ge=1,
        description="Longest array kept in a truncated payload.",
        json_schema_extra=env("WORKFLOW_VARIABLE_TRUNCATION_ARRAY_LENGTH"),
    )
    health_breaker_open_max_s: float = Field(
        60.0,
        ge=0,
        le=86_400,
        description="Health turns unhealthy when the write circuit breaker has stayed open this many seconds "
        "(the backend answers pings but refuses or fails writes: quota, missing write permission).",
        json_schema_extra=env("LOGSTORE_HEALTH_BREAKER_OPEN_MAX"),
    )
    health_pending_age_max_s: float = Field(
        300.0,
        gt=0,
        le=604_800,
        description="Health turns unhealthy when the oldest record not yet acknowledged by the backend is "
        "older than this many seconds.",
        json_schema_extra=env("LOGSTORE_HEALTH_MAX_PENDING_AGE"),
    )
    health_url_prefix: str = Field(
        "",
        description="When set (e.g. `/logstore`), serve the health report at `<prefix>/health`.",
        json_schema_extra=env("LOGSTORE_HEALTH_URL_PREFIX"),
    )

    sls: AliyunSLSSettings = Field(default_factory=lambda: AliyunSLSSettings())
    elasticsearch: ElasticsearchSettings = Field(default_factory=lambda: ElasticsearchSettings())
    pipeline: PipelineSettings = Field(default_factory=lambda: PipelineSettings())

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        environment = environment_source(settings_cls)
        dotenv = dotenv_source(settings_cls, getattr(dotenv_settings, "env_file", None))
        configured = getattr(file_secret_settings, "secrets_dir", None) or getattr(
            init_settings, "init_kwargs", {}
        ).get("secrets_directory")
        secrets_dir = secrets_dir_for(configured, environment.raw, dotenv.raw)
        return (init_settings, environment, dotenv, secrets_source(settings_cls, secrets_dir))

    @field_validator("backend")
    @classmethod
    def _check_backend(cls, value: str) -> str:
        return check_backend_name(value)

    @property
    def effective_backend(self) -> str:
        """The backend in force: ``ELASTICSEARCH_ENABLED=true`` implies ``elasticsearch``."""
        if self.backend == "none" and self.elasticsearch_enabled:
            return "elasticsearch"
        return self.backend

    @property
    def enabled(self) -> bool:
        """Whether a backend is configured at all."""
        return self.effective_backend != "none"

    @classmethod
    def load(cls, env_file: str | Path | None = ".env", **overrides: t.Any) -> LogStoreSettings:
        """Read the environment and ``env_file`` and check them; raise one error listing every problem."""
        try:
            settings = cls(_env_file=env_file, **overrides)
        except ValidationError as exc:
            problems = problems_for_model(exc, cls)
            # Load again with the bad fields at their defaults, so the one error also names the
            # missing values of the chosen backend.
            try:
                partial = cls(_env_file=env_file, **defaults_for(exc, overrides, cls))
                problems.extend(p for p in partial.problems() if p not in problems)
            except ValidationError:
                pass
            raise LogStoreConfigError(problems) from None
        settings.check()
        return settings

    def check(self) -> None:
        """Check the combinations a single field can't validate (required values of the chosen backend)."""
        problems = self.problems()
        if problems:
            raise LogStoreConfigError(problems)

    def problems(self) -> list[ConfigProblem]:
        """Every cross-field problem of this configuration."""
        problems: list[ConfigProblem] = []
        backend = self.effective_backend
        if backend == "aliyun_sls":
            for name in self.sls.missing():
                problems.append(ConfigProblem(name, "is required when LOGSTORE_BACKEND=aliyun_sls", f"set {name}"))
        if backend == "elasticsearch":
            es = self.elasticsearch
            if not es.hosts:
                problems.append(
                    ConfigProblem(
                        "ELASTICSEARCH_HOSTS",
                        "is required for the elasticsearch backend",
                        'set it to a URL list, e.g. ["http://127.0.0.1:9200"]',
                    )
                )
            if bool(es.username) != bool(es.password.get_secret_value()):
                problems.append(
                    ConfigProblem(
                        "LOGSTORE_ES_USERNAME / LOGSTORE_ES_PASSWORD",
                        "only one of the pair is set",
                        "set both for basic auth, or neither",
                    )
                )
            if es.username and es.api_key.get_secret_value():
                problems.append(
                    ConfigProblem(
                        "LOGSTORE_ES_API_KEY",
                        "is set together with LOGSTORE_ES_USERNAME",
                        "use either an API key or basic auth",
                    )
                )
        return problems

    def summary(self) -> dict[str, t.Any]:
        """A printable view of the settings with every secret masked."""
        return t.cast(dict[str, t.Any], mask_secrets(self.model_dump()))


def problems_from_validation_error(exc: ValidationError) -> list[ConfigProblem]:
    """Turn pydantic's errors on :class:`LogStoreSettings` into problems named by environment variable."""
    return problems_for_model(exc, LogStoreSettings)
