"""The error type every layer raises; the HTTP layer turns it into SLS's JSON error body."""

from __future__ import annotations


class SLSError(Exception):
    """An SLS API error: HTTP status, ``errorCode`` and ``errorMessage`` as real SLS sends them."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def not_found(code: str, message: str) -> SLSError:
    return SLSError(404, code, message)


def bad_request(code: str, message: str) -> SLSError:
    return SLSError(400, code, message)
