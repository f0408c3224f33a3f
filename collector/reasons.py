"""Why the collector refuses a request or rejects an event: typed reasons, each with a
message that names what was wrong."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


class Reason(str, Enum):
    # A whole request refused: nothing of it reaches `events`.
    MALFORMED_BODY = "malformed_body"
    BODY_TOO_LARGE = "body_too_large"
    BATCH_TOO_LARGE = "batch_too_large"
    RATE_LIMITED = "rate_limited"  # not kept in `events.invalid`: the sender retries
    UNKNOWN_SITE = "unknown_site"
    ORIGIN_NOT_ALLOWED = "origin_not_allowed"
    REGISTRY_UNAVAILABLE = "registry_unavailable"  # 503: the sender retries
    KAFKA_UNAVAILABLE = "kafka_unavailable"  # 503: the sender retries
    # One event rejected, kept in `events.invalid` with its errors.
    SCHEMA = "schema_violation"
    CONTROL_CHARACTERS = "control_characters"
    INVALID_URL = "invalid_url"
    CLOCK_SKEW = "clock_skew"


REQUEST_REASONS = frozenset({Reason.MALFORMED_BODY, Reason.BODY_TOO_LARGE, Reason.BATCH_TOO_LARGE, Reason.RATE_LIMITED,
                             Reason.UNKNOWN_SITE, Reason.ORIGIN_NOT_ALLOWED, Reason.REGISTRY_UNAVAILABLE,
                             Reason.KAFKA_UNAVAILABLE})


class RequestRejected(Exception):
    """The whole request is refused: nothing from it goes to `events`.

    ``keep``: its events go to `events.invalid` with this reason and this error. ``retry_after``:
    the seconds a sender should wait (a 503 says 5 unless told). ``details``: more fields of
    the JSON answer (a rate limit names itself)."""

    def __init__(self, reason: Reason, message: str, status: int = 400, *, keep: str | None = None,
                 retry_after: int | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.reason, self.message, self.status, self.keep = reason, message, status, keep
        self.retry_after = retry_after if retry_after is not None or status != 503 else 5
        self.details = details or {}


@dataclass(frozen=True)
class Problem:
    """Why one event was rejected: a reason and messages that name the offending field."""
    reason: Reason
    errors: list[str]


@dataclass(frozen=True)
class Rejection:
    index: int
    event: Any  # as sent
    reason: Reason
    errors: list[str]
