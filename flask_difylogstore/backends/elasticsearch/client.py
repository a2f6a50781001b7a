"""Building the ``elasticsearch`` client from settings, and matching it to the cluster's version.

Credentials come only from ``LOGSTORE_ES_*`` (see :class:`ElasticsearchSettings`), never from
Dify's vector-store ``ELASTICSEARCH_USERNAME`` / ``ELASTICSEARCH_PASSWORD``. The client never
touches the network when it is built, so an unreachable cluster at boot yields a working backend
object that reports itself unhealthy, not a ``None`` client.

elasticsearch-py sends ``compatible-with=<client major>`` on every request: a 9.x client is
refused by an 8.x cluster (``media_type_header_exception``), an 8.x client works with a 9.x
cluster through REST compatibility. :func:`probe_server` asks ``GET /`` without that header so
the mismatch can be explained instead of surfacing as an opaque 400.
"""

from __future__ import annotations

import logging
import typing as t
from dataclasses import dataclass

import elasticsearch
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout
from elasticsearch import ApiError, Elasticsearch

from flask_difylogstore._version import __version__
from flask_difylogstore.errors import BackendUnavailableError
from flask_difylogstore.settings import ElasticsearchSettings

logger = logging.getLogger(__name__)

CLIENT_VERSION = ".".join(str(part) for part in elasticsearch.__version__)
CLIENT_MAJOR = int(elasticsearch.__version__[0])
#: Statuses the transport retries (with its own back-off) before a call gives up.
RETRY_ON_STATUS = (429, 500, 502, 503, 504)
#: Seconds for health pings and the version probe.
PING_TIMEOUT = 3.0
USER_AGENT = f"flask-difylogstore/{__version__} elasticsearch-py/{CLIENT_VERSION}"


def is_retryable_status(status: int | None) -> bool:
    """Whether a request or bulk item failing with ``status`` may succeed when sent again.

    Authentication and authorisation failures (401/403) count as transient: the operator fixes the
    credentials or the role, and the records waiting in the spool are delivered then.
    """
    return status is None or status in (401, 403, 408, 429) or status >= 500


def is_retryable(error: BaseException) -> bool:
    """Whether an exception from the client is transient (network, overload, server error)."""
    if isinstance(error, TransportConnectionError | ConnectionTimeout):
        return True
    if isinstance(error, ApiError):
        return is_retryable_status(error.meta.status)
    return isinstance(error, OSError)


def _api_key(raw: str) -> str | tuple[str, str]:
    """``id:key`` becomes the tuple the client encodes; anything else is already encoded."""
    if ":" in raw:
        key_id, _, key = raw.partition(":")
        return key_id, key
    return raw


def build_client(settings: ElasticsearchSettings) -> Elasticsearch:
    """A client for ``settings``: auth, TLS, bounded timeout, retries on 429 / 5xx. No network I/O."""
    kwargs: dict[str, t.Any] = {
        "request_timeout": settings.request_timeout,
        "max_retries": settings.max_retries,
        "retry_on_status": RETRY_ON_STATUS,
        "retry_on_timeout": True,
        "headers": {"user-agent": USER_AGENT},
    }
    api_key = settings.api_key.get_secret_value()
    if api_key:
        kwargs["api_key"] = _api_key(api_key)
    elif settings.username:
        kwargs["basic_auth"] = (settings.username, settings.password.get_secret_value())
    https = [h for h in settings.hosts if h.startswith("https://")]
    if https:
        kwargs["verify_certs"] = settings.verify_certs
        if settings.ca_certs:
            if len(https) == len(settings.hosts):
                kwargs["ca_certs"] = settings.ca_certs
            else:
                logger.warning("LOGSTORE_ES_CA_CERTS ignored: ELASTICSEARCH_HOSTS mixes http:// and https://")
    try:
        from elasticsearch.serializer import OrjsonSerializer

        kwargs["serializer"] = OrjsonSerializer()
    except ImportError:  # pragma: no cover - orjson is a dependency
        pass
    return Elasticsearch(list(settings.hosts), **kwargs)


@dataclass(frozen=True)
class ServerInfo:
    """What ``GET /`` says about the cluster."""

    version: str
    distribution: str = "elasticsearch"
    build_flavor: str = "default"

    @property
    def major(self) -> int:
        try:
            return int(self.version.split(".")[0])
        except ValueError:
            return 0


def probe_server(client: Elasticsearch, timeout: float = PING_TIMEOUT) -> ServerInfo:
    """``GET /`` with ``Accept: */*`` (no compatibility header), so a cluster of any major answers."""
    try:
        response = client.options(request_timeout=timeout, max_retries=0).perform_request(
            "GET", "/", headers={"accept": "*/*"}
        )
    except (TransportConnectionError, ConnectionTimeout) as exc:
        raise BackendUnavailableError(f"Elasticsearch unreachable: {exc}") from exc
    except ApiError as exc:
        if exc.meta.status == 401:
            raise BackendUnavailableError(
                "Elasticsearch rejected the credentials (HTTP 401); check LOGSTORE_ES_API_KEY or "
                "LOGSTORE_ES_USERNAME / LOGSTORE_ES_PASSWORD"
            ) from exc
        if exc.meta.status == 403:
            raise BackendUnavailableError(
                "Elasticsearch denied GET / (HTTP 403); the user or API key needs the cluster privilege "
                "'monitor' (and 'manage_index_templates', 'manage_ilm' to provision)"
            ) from exc
        raise BackendUnavailableError(f"Elasticsearch answered GET / with {exc}") from exc
    body = response.body if isinstance(response.body, dict) else {}
    version = body.get("version") or {}
    return ServerInfo(
        version=str(version.get("number", "0")),
        distribution=str(version.get("distribution", "elasticsearch")),
        build_flavor=str(version.get("build_flavor", "default")),
    )


def compatibility_problem(info: ServerInfo, client_major: int = CLIENT_MAJOR) -> tuple[bool, str | None]:
    """``(fatal, message)`` about using this client with this cluster; ``(False, None)`` when matched."""
    if info.distribution.lower() == "opensearch":
        return True, f"the cluster is OpenSearch {info.version}; this backend supports Elasticsearch 8 and 9"
    if info.build_flavor == "serverless" or info.major == client_major:
        return False, None
    if info.major < 8:
        return True, f"Elasticsearch {info.version} is not supported; upgrade the cluster to 8.x or 9.x"
    if client_major > info.major:
        return True, (
            f"the installed elasticsearch-py {CLIENT_VERSION} cannot talk to an "
            f"Elasticsearch {info.version} cluster (it sends compatible-with={client_major}); install the "
            f"matching client: pip install 'elasticsearch>={info.major}.13,<{info.major + 1}'"
        )
    return False, (
        f"elasticsearch-py {CLIENT_VERSION} talks to Elasticsearch {info.version} through REST "
        f"API compatibility; install the matching client for full support: "
        f"pip install 'elasticsearch>={info.major},<{info.major + 1}'"
    )
