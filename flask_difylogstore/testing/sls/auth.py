"""Server-side checks of the SDK's v1 (``LOG ak:sig``) and v4 (``SLS4-HMAC-SHA256``) signatures.

They recompute the signature exactly as ``aliyun/log/auth.py`` builds it, so a client configured
with the wrong secret fails here the way it fails against real SLS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import quote

from flask_difylogstore.testing.sls.errors import SLSError


def _unauthorized(code: str, message: str) -> SLSError:
    return SLSError(401, code, message)


def _is_signed_header(name: str) -> bool:
    return name.startswith("x-acs-") or (name.startswith("x-log-") and not name.startswith("x-log-meta-"))


def verify_request(
    method: str,
    path: str,
    params: list[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
    access_key_id: str,
    access_key_secret: str,
) -> None:
    """Raise ``SLSError`` (401) unless the request is signed with the configured key pair.

    ``headers`` must have lower-case names; ``params`` are the decoded query parameters.
    """
    authorization = headers.get("authorization", "")
    if authorization.startswith("LOG "):
        _verify_v1(method, path, params, headers, authorization[4:], access_key_id, access_key_secret)
    elif authorization.startswith("SLS4-HMAC-SHA256 "):
        _verify_v4(method, path, params, headers, body, authorization, access_key_id, access_key_secret)
    else:
        raise _unauthorized("Unauthorized", "the request is not signed (no Authorization header)")


def _check_key(received: str, access_key_id: str) -> None:
    if not hmac.compare_digest(received.encode(), access_key_id.encode()):
        raise _unauthorized("Unauthorized", f"AccessKeyId {received} is not found")


def _verify_v1(
    method: str,
    path: str,
    params: list[tuple[str, str]],
    headers: Mapping[str, str],
    credential: str,
    access_key_id: str,
    access_key_secret: str,
) -> None:
    ak, _, signature = credential.partition(":")
    _check_key(ak, access_key_id)
    canonical_headers = "".join(
        f"{name}:{headers[name]}\n" for name in sorted(headers) if _is_signed_header(name) and name != "x-log-date"
    )
    resource = path
    if params:
        resource += "?" + "&".join(f"{k}={v}" for k, v in sorted(params))
    string_to_sign = (
        f"{method}\n{headers.get('content-md5', '')}\n{headers.get('content-type', '')}\n"
        f"{headers.get('date', '')}\n{canonical_headers}{resource}"
    )
    digest = hmac.new(access_key_secret.encode(), string_to_sign.encode(), hashlib.sha1).digest()
    expected = base64.b64encode(digest).decode()
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise _unauthorized("SignatureNotMatch", f"signature {signature} not match")


def _verify_v4(
    method: str,
    path: str,
    params: list[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
    authorization: str,
    access_key_id: str,
    access_key_secret: str,
) -> None:
    fields: dict[str, str] = {}
    for part in authorization[len("SLS4-HMAC-SHA256 ") :].split(","):
        name, _, value = part.strip().partition("=")
        fields[name] = value
    credential = fields.get("Credential", "")
    signature = fields.get("Signature", "")
    scope_parts = credential.split("/")
    if len(scope_parts) != 5:
        raise _unauthorized("Unauthorized", "malformed v4 credential")
    ak, date, region = scope_parts[0], scope_parts[1], scope_parts[2]
    _check_key(ak, access_key_id)
    content_sha256 = headers.get("x-log-content-sha256", "")
    if body and hashlib.sha256(body).hexdigest() != content_sha256:
        raise _unauthorized("SignatureNotMatch", "x-log-content-sha256 does not match the body")
    signed = {
        name: value.strip()
        for name, value in headers.items()
        if name in ("content-type", "host") or _is_signed_header(name)
    }
    canonical_headers = "".join(f"{name}:{signed[name]}\n" for name in sorted(signed))
    signed_names = ";".join(sorted(signed))
    query_parts = []
    for key, value in sorted((k, quote(v.encode(), safe="~")) for k, v in params):
        query_parts.append(f"{key}={value}" if value else key)
    canonical_request = "\n".join(
        [method, path, "&".join(query_parts), canonical_headers, signed_names, content_sha256]
    )
    timestamp = headers.get("x-log-date", "")
    scope = "/".join(scope_parts[1:])
    string_to_sign = "\n".join(
        ["SLS4-HMAC-SHA256", timestamp, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    signing_key = ("aliyun_v4" + access_key_secret).encode()
    for part in (date, region, "sls", "aliyun_v4_request"):
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise _unauthorized("SignatureNotMatch", f"signature {signature} not match")
