"""The typed sections of the settings: Aliyun SLS, Elasticsearch and the write pipeline.

Each field declares the flat environment names it is read from; :class:`~flask_difylogstore.settings.LogStoreSettings`
holds one of each section and is where callers import them from.
"""

from __future__ import annotations

import typing as t

import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from flask_difylogstore._settings_sources import env


class AliyunSLSSettings(BaseModel):
    """Aliyun Simple Log Service (SLS): credentials, location and logstore layout."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    access_key_id: str = Field("", description="AccessKey ID.", json_schema_extra=env("ALIYUN_SLS_ACCESS_KEY_ID"))
    access_key_secret: SecretStr = Field(
        SecretStr(""), description="AccessKey secret.", json_schema_extra=env("ALIYUN_SLS_ACCESS_KEY_SECRET")
    )
    endpoint: str = Field(
        "",
        description="Service endpoint, e.g. `cn-hangzhou.log.aliyuncs.com` (scheme optional; `https://` selects TLS).",
        json_schema_extra=env("ALIYUN_SLS_ENDPOINT"),
    )
    region: str = Field(
        "", description="Region, used for V4 request signing.", json_schema_extra=env("ALIYUN_SLS_REGION")
    )
    project_name: str = Field(
        "", description="SLS project holding the logstores.", json_schema_extra=env("ALIYUN_SLS_PROJECT_NAME")
    )
    logstore_ttl: int = Field(
        365,
        ge=1,
        le=3650,
        description="Retention of every logstore, in days.",
        json_schema_extra=env("ALIYUN_SLS_LOGSTORE_TTL"),
    )
    shard_count: int = Field(
        2,
        ge=1,
        le=64,
        description="Shards of a newly created logstore.",
        json_schema_extra=env("ALIYUN_SLS_SHARD_COUNT"),
    )
    logstore_prefix: str = Field(
        "",
        description="Prefix of the logstore names (`workflow_execution`, `workflow_node_execution`, ...).",
        json_schema_extra=env("ALIYUN_SLS_LOGSTORE_PREFIX"),
    )
    max_text_len: int = Field(
        16384,
        ge=64,
        le=16384,
        description="Index `max_text_len`: longest text value SQL analysis sees (SLS caps it at 16384).",
        json_schema_extra=env("ALIYUN_SLS_MAX_TEXT_LEN"),
    )
    check_connectivity_timeout: float = Field(
        5.0,
        gt=0,
        le=120,
        description="Seconds to wait for a connection to the endpoint: the health ping's budget and the "
        "connect timeout of every request.",
        json_schema_extra=env("ALIYUN_SLS_CHECK_CONNECTIVITY_TIMEOUT"),
    )

    def missing(self) -> list[str]:
        """Names of the required variables that are empty."""
        required = {
            "ALIYUN_SLS_ACCESS_KEY_ID": self.access_key_id,
            "ALIYUN_SLS_ACCESS_KEY_SECRET": self.access_key_secret.get_secret_value(),
            "ALIYUN_SLS_ENDPOINT": self.endpoint,
            "ALIYUN_SLS_REGION": self.region,
            "ALIYUN_SLS_PROJECT_NAME": self.project_name,
        }
        return [name for name, value in required.items() if not value]


class ElasticsearchSettings(BaseModel):
    """Elasticsearch 8/9: cluster, authentication and index layout.

    Authentication is read from ``LOGSTORE_ES_*`` and deliberately not from Dify's vector-store
    ``ELASTICSEARCH_USERNAME`` / ``ELASTICSEARCH_PASSWORD``, so the two subsystems never share or
    override each other's credentials.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    hosts: list[str] = Field(
        default_factory=list,
        description="Cluster URLs: a JSON list or a comma-separated list.",
        json_schema_extra=env("ELASTICSEARCH_HOSTS"),
    )
    index_prefix: str = Field(
        "dify",
        pattern=r"^[a-z0-9][a-z0-9_.-]*$",
        description="Prefix of every index, template and policy.",
        json_schema_extra=env("ELASTICSEARCH_INDEX_PREFIX"),
    )
    retention_days: int = Field(
        365,
        ge=1,
        le=36500,
        description="Days before the lifecycle policy deletes an index.",
        json_schema_extra=env("ELASTICSEARCH_RETENTION_DAYS"),
    )
    username: str = Field("", description="Basic-auth user.", json_schema_extra=env("LOGSTORE_ES_USERNAME"))
    password: SecretStr = Field(
        SecretStr(""), description="Basic-auth password.", json_schema_extra=env("LOGSTORE_ES_PASSWORD")
    )
    api_key: SecretStr = Field(
        SecretStr(""),
        description="API key (`id:key` or the encoded form).",
        json_schema_extra=env("LOGSTORE_ES_API_KEY"),
    )
    ca_certs: str = Field("", description="Path of a CA bundle.", json_schema_extra=env("LOGSTORE_ES_CA_CERTS"))
    verify_certs: bool = Field(
        True, description="Verify the cluster's TLS certificate.", json_schema_extra=env("LOGSTORE_ES_VERIFY_CERTS")
    )
    request_timeout: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Seconds before a request times out.",
        json_schema_extra=env("LOGSTORE_ES_REQUEST_TIMEOUT"),
    )
    max_retries: int = Field(
        3,
        ge=0,
        le=10,
        description="Retries on 429 / 5xx / connection errors.",
        json_schema_extra=env("LOGSTORE_ES_MAX_RETRIES"),
    )
    number_of_shards: int = Field(
        1,
        ge=1,
        le=64,
        description="Primary shards of each new index.",
        json_schema_extra=env("LOGSTORE_ES_NUMBER_OF_SHARDS"),
    )
    number_of_replicas: int = Field(
        1,
        ge=0,
        le=10,
        description="Replicas of each new index.",
        json_schema_extra=env("LOGSTORE_ES_NUMBER_OF_REPLICAS"),
    )
    index_period: t.Literal["day", "week", "month"] = Field(
        "month",
        description="Time partition of the indices, by the entity's creation time.",
        json_schema_extra=env("LOGSTORE_ES_INDEX_PERIOD"),
    )

    @field_validator("hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: t.Any) -> t.Any:
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return []
            if text.startswith("["):
                return orjson.loads(text)
            return [h.strip() for h in text.split(",") if h.strip()]
        return value

    @field_validator("hosts")
    @classmethod
    def _check_hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            if not host.startswith(("http://", "https://")):
                raise ValueError(f"host {host!r} must start with http:// or https://")
        return value


class PipelineSettings(BaseModel):
    """The background writer: batching, durable spool and retries."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    batch_max_records: int = Field(
        1000,
        ge=1,
        le=4096,
        description="Records per backend request at most.",
        json_schema_extra=env("LOGSTORE_BATCH_MAX_RECORDS"),
    )
    batch_max_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        le=9 * 1024 * 1024,
        description="Serialised bytes per backend request at most.",
        json_schema_extra=env("LOGSTORE_BATCH_MAX_BYTES"),
    )
    flush_interval_ms: int = Field(
        200,
        ge=1,
        le=60_000,
        description="Longest time a record waits for its batch to fill.",
        json_schema_extra=env("LOGSTORE_FLUSH_INTERVAL_MS"),
    )
    fsync_interval_ms: int = Field(
        50,
        ge=0,
        le=100,
        description="Group-commit interval of the spool's fsync (0: fsync every append).",
        json_schema_extra=env("LOGSTORE_SPOOL_FSYNC_INTERVAL_MS"),
    )
    spool_max_bytes: int = Field(
        1024 * 1024 * 1024,
        ge=1024 * 1024,
        description="Size cap of the spool directory.",
        json_schema_extra=env("LOGSTORE_SPOOL_MAX_BYTES"),
    )
    overflow_policy: t.Literal["block", "drop_newest", "fail"] = Field(
        "block",
        description="What `save()` does when the spool is full: wait for room (bounded), drop the record "
        "(counted and logged), or raise.",
        json_schema_extra=env("LOGSTORE_SPOOL_OVERFLOW_POLICY"),
    )
    overflow_block_timeout_s: float = Field(
        5.0,
        ge=0,
        le=600,
        description="With the `block` policy, how long `save()` waits for spool room before raising.",
        json_schema_extra=env("LOGSTORE_SPOOL_OVERFLOW_BLOCK_TIMEOUT"),
    )
    memory_max_bytes: int = Field(
        64 * 1024 * 1024,
        ge=64 * 1024,
        description="Memory for records waiting to be sent; beyond it they "
        "wait in the spool only and are read back from disk.",
        json_schema_extra=env("LOGSTORE_PIPELINE_MEMORY_MAX_BYTES"),
    )
    max_retry_delay_s: float = Field(
        4.0,
        gt=0,
        le=600,
        description="Cap of the exponential retry back-off, of the circuit breaker's pause between probes and of "
        "the provisioning retry interval: delivery resumes at most this long (plus one request) after the "
        "backend returns.",
        json_schema_extra=env("LOGSTORE_MAX_RETRY_DELAY"),
    )
    shutdown_timeout_s: float = Field(
        10.0,
        ge=0,
        le=600,
        description="How long shutdown waits to flush; the rest stays in the spool. Shutdown stops waiting "
        "after 0.5 s when delivery is impossible (backend failing or not provisioned).",
        json_schema_extra=env("LOGSTORE_SHUTDOWN_TIMEOUT"),
    )
