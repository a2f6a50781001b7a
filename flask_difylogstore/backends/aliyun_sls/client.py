"""Building the SDK's ``LogClient`` from settings, with the fixes a long-running service needs.

The stock client retries every 5xx / connection error ten times with a one-second sleep inside
each call, sends requests for an ``IP:port`` endpoint to the unresolvable ``<project>.<ip>``, and
looks up the machine's source address on every ``put_logs``. :func:`make_client` bounds the
timeout, lets the backend decide about retries (see :class:`TransportError`), keeps the project in
the Host header for IP endpoints, and fixes ``source`` once.
"""

from __future__ import annotations

import functools
import inspect
import ipaddress
import socket
import typing as t
from urllib.parse import urlsplit

from aliyun.log import LogClient
from aliyun.log.auth import AUTH_VERSION_1, AUTH_VERSION_4
from aliyun.log.logexception import LogException
from aliyun.log.util import Util

from flask_difylogstore._version import __version__
from flask_difylogstore.errors import DifyLogStoreError
from flask_difylogstore.settings import AliyunSLSSettings

#: Seconds for one HTTP request (connect + read); SQL reads may legitimately take a while.
DEFAULT_TIMEOUT = 30.0
USER_AGENT_PREFIX = f"flask-difylogstore/{__version__}"

_RETRYABLE_CODES = frozenset(
    {
        "InternalServerError",
        "RequestTimeout",
        "ServerBusy",
        "WriteQuotaExceed",
        "ShardWriteQuotaExceed",
        "ReadQuotaExceed",
        "ShardReadQuotaExceed",
        "ExceedQuota",
        "QpsLimit",
        "LogRequestError",
    }
)


class TransportError(Exception):
    """A failure the SDK would have retried in a blocking loop; raised at once instead.

    Deliberately not a ``LogException``, so it leaves the SDK's internal retry loop: the
    backend (or the pipeline's back-off) owns the retry policy.
    """

    def __init__(self, error: LogException) -> None:
        super().__init__(f"{error.get_error_code()}: {error.get_error_message()}")
        self.error = error


def is_retryable(error: BaseException) -> bool:
    """Whether sending the same request again may succeed."""
    if isinstance(error, TransportError):
        return True
    if isinstance(error, LogException):
        status = error.get_resp_status()
        code = error.get_error_code()
        return code in _RETRYABLE_CODES or (isinstance(status, int) and (status >= 500 or status == 429))
    return isinstance(error, OSError)


class BoundedLogClient(LogClient):
    """``LogClient`` whose transient failures surface immediately as :class:`TransportError`.

    With ``connect_timeout`` set, requests get ``timeout=(connect, read)`` (the SDK hands its
    ``_timeout`` to ``requests`` unchanged): a host that never answers costs the connect budget,
    not the read timeout meant for long SQL reads. ``timeout`` still reads as the read timeout.
    """

    connect_timeout: float | None = None

    @property  # type: ignore[override]  # the SDK declares int; seconds may be fractional
    def timeout(self) -> float:
        value = t.cast(t.Any, self)._timeout
        return float(value[1] if isinstance(value, tuple) else value)

    @timeout.setter
    def timeout(self, value: float) -> None:
        connect = self.connect_timeout
        t.cast(t.Any, self)._timeout = (min(connect, value), value) if connect else value

    def _sendRequest(
        self,
        method: str,
        url: str,
        params: t.Any,
        body: t.Any,
        headers: t.Any,
        respons_body_type: str = "json",
    ) -> t.Any:
        try:
            parent = t.cast(t.Any, super())
            return parent._sendRequest(method, url, params, body, headers, respons_body_type)
        except LogException as exc:
            status = exc.get_resp_status()
            transient = exc.get_error_code() in ("InternalServerError", "RequestTimeout") or (
                isinstance(status, int) and status >= 500
            )
            network = (
                exc.get_error_code() == "LogRequestError"
                and "httpconnectionpool" in str(exc.get_error_message()).lower()
            )
            if transient or network:
                raise TransportError(exc) from exc
            raise


def endpoint_host(endpoint: str) -> str:
    """The host part of an endpoint given with or without scheme and port."""
    text = endpoint.strip()
    return urlsplit(text if "://" in text else f"http://{text}").hostname or ""


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _source_ip(host: str) -> str:
    """This machine's address towards ``host`` (what SLS shows as ``__source__``), no DNS for IPs."""
    if is_ip_literal(host):
        return "127.0.0.1" if ipaddress.ip_address(host).is_loopback else _route_ip(host)
    return _route_ip(host)


def _route_ip(host: str) -> str:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.5)
            sock.connect((host, 80))
            return str(sock.getsockname()[0])
    except OSError:
        return "0.0.0.0"


#: Versions of ``aliyun-log-python-sdk`` this module was tested with (``pyproject.toml`` pins the range).
TESTED_SDK_VERSIONS = ">=0.9.52,<0.10"
#: Private names of ``LogClient`` instances this module reads or sets.
SDK_PRIVATE_ATTRIBUTES = ("_isRowIp", "_user_agent", "_source", "_logHost", "_timeout")
#: ``LogClient._sendRequest``'s parameters, which :class:`BoundedLogClient` overrides.
SDK_SEND_REQUEST_PARAMETERS = ("self", "method", "url", "params", "body", "headers", "respons_body_type")


class SDKContractError(DifyLogStoreError):
    """The installed ``aliyun-log-python-sdk`` lacks a name this backend relies on."""


def sdk_contract_problems() -> list[str]:
    """What the installed SDK lacks of the private names this backend relies on (empty: all there)."""
    problems: list[str] = []
    send = getattr(LogClient, "_sendRequest", None)
    if send is None:
        problems.append("LogClient._sendRequest is missing")
    elif tuple(inspect.signature(send).parameters) != SDK_SEND_REQUEST_PARAMETERS:
        problems.append(f"LogClient._sendRequest{inspect.signature(send)} changed its parameters")
    probe = LogClient("127.0.0.1:80", "id", "secret")
    problems += [f"LogClient.{name} is missing" for name in SDK_PRIVATE_ATTRIBUTES if not hasattr(probe, name)]
    if not isinstance(getattr(LogClient, "timeout", None), property):
        problems.append("LogClient.timeout is no longer a property")
    get_response = getattr(LogClient, "_getHttpResponse", None)
    if get_response is None or "timeout=self._timeout" not in inspect.getsource(get_response):
        problems.append("LogClient._getHttpResponse no longer passes timeout=self._timeout to requests")
    put_raw = getattr(LogClient, "put_log_raw", None)
    if put_raw is None:
        problems.append("LogClient.put_log_raw is missing")
    elif "SerializeToString()" not in inspect.getsource(put_raw):
        problems.append("LogClient.put_log_raw no longer serialises its log_group with SerializeToString()")
    if not callable(getattr(Util, "get_host_ip", None)):
        problems.append("aliyun.log.util.Util.get_host_ip is missing")
    return problems


@functools.cache
def check_sdk() -> None:
    """Fail loudly, naming the attribute, when the installed SDK no longer has what this backend uses."""
    problems = sdk_contract_problems()
    if problems:
        from importlib.metadata import version

        raise SDKContractError(
            f"aliyun-log-python-sdk {version('aliyun-log-python-sdk')} is not compatible with flask-difylogstore "
            f"(tested: {TESTED_SDK_VERSIONS}): {'; '.join(problems)}; install "
            f"'aliyun-log-python-sdk{TESTED_SDK_VERSIONS}'"
        )


def make_client(settings: AliyunSLSSettings, *, timeout: float = DEFAULT_TIMEOUT) -> BoundedLogClient:
    """A client for ``settings``: v4 signing when a region is set, bounded timeout, fixed source."""
    check_sdk()
    host = endpoint_host(settings.endpoint)
    secret = settings.access_key_secret.get_secret_value()
    auth = AUTH_VERSION_4 if settings.region else AUTH_VERSION_1
    source = _source_ip(host)
    if source == "127.0.0.1":
        # The SDK treats 127.0.0.1 as "unknown" and resolves <project>.<host> on every put.
        source = "127.0.0.2"
    client = BoundedLogClient(
        settings.endpoint.strip(),
        settings.access_key_id,
        secret,
        source=source,
        auth_version=auth,
        region=settings.region or "",
    )
    raw = t.cast(t.Any, client)
    client.connect_timeout = settings.check_connectivity_timeout
    if is_ip_literal(host):
        # Otherwise the SDK requests http://<project>.<ip>:<port>, which never resolves.
        raw._isRowIp = True
    raw.timeout = timeout
    client.set_user_agent(f"{USER_AGENT_PREFIX},{raw._user_agent}")
    return client
