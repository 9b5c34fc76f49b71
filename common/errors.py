"""The one shape of every API error: {"error": {"code": ..., "message": ..., and any details}}."""

from __future__ import annotations

# A client may try again this many seconds after a 503 for a database outage.
DATABASE_RETRY_AFTER = 5


def error_body(code: str, message: str, **details) -> dict:
    return {"error": {"code": code, "message": message, **details}}


def database_unavailable() -> tuple[dict, int, dict]:
    """(body, status, headers) while the database is unreachable: a 503, so that clients retry."""
    body = error_body("database_unavailable", "the database is unavailable; try again shortly")
    return body, 503, {"Retry-After": str(DATABASE_RETRY_AFTER)}


def server_error(request_id: str | None) -> dict:
    return error_body(
        "server_error", "an unexpected error occurred; quote the request id when reporting it", request_id=request_id
    )
