"""The gateway's errors, each answered as OpenAI answers one.

Every error the gateway answers, from any route (a 404 for an unknown path and a 500
included), is `{"error": {"message", "type", "param", "code"}}` with `param` and `code`
null where they do not apply, so an OpenAI client raises its own typed error
(`BadRequestError`, `NotFoundError`, ...) with the message. `ApiError` carries one;
`RequestError` is the 400 of a malformed request.
"""

from __future__ import annotations

from typing import Any

INVALID = "invalid_request_error"  # OpenAI's type for the client's mistakes
SERVER = "server_error"
UPSTREAM = "upstream_error"


class ApiError(Exception):
    """An error answered as `{"error": {...}}` with its HTTP status.

    Args:
        status: the HTTP status.
        message: what went wrong, for a person.
        kind: the error's "type" (e.g. "invalid_request_error").
        param: the request field at fault, or None.
        code: a short machine-readable code, or None.
        headers: extra response headers (e.g. WWW-Authenticate on a 401).

    >>> ApiError(404, "no such model", INVALID, param="model").body()["error"]["param"]
    'model'
    """

    def __init__(
        self,
        status: int,
        message: str,
        kind: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind
        self.param, self.code, self.headers = param, code, headers

    def body(self) -> dict[str, Any]:
        """The answer's JSON body."""
        return error_body(self.message, self.kind, param=self.param, code=self.code)


class RequestError(ApiError, ValueError):
    """A malformed request, answered 400; the message is the reason, `param` the field.

    >>> RequestError("'stream' must be true or false", param="stream").status
    400
    """

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(400, message, INVALID, param=param, code=code)


def error_body(
    message: str, kind: str, *, param: str | None = None, code: str | None = None, **extra: Any
) -> dict[str, Any]:
    """OpenAI's error object: `{"error": {"message", "type", "param", "code", **extra}}`.

    >>> error_body("gone", "server_error")
    {'error': {'message': 'gone', 'type': 'server_error', 'param': None, 'code': None}}
    """
    return {"error": {"message": message, "type": kind, "param": param, "code": code, **extra}}
