"""The limits' errors, in tokens.errors' vocabulary: each contract's ErrorFormat renders them
(429, with Retry-After for a rate), and sockets close with their `close_code`."""

from tokens.errors import RateLimited

# WebSocket close codes (README "WebSockets and close codes").
CLOSE_RATE_LIMITED = 4290  # too many connects, or failed authentications, from the address
CLOSE_QUOTA = 4291  # the project's concurrent-socket quota is reached
CLOSE_SESSION_LENGTH = 4292  # the project's maximum voice-session length was reached


class TooManyRequests(RateLimited):
    """Too many requests."""

    close_code = CLOSE_RATE_LIMITED

    def __init__(self, message: str, *, retry_after: int, headers: dict | None = None):
        super().__init__(
            message,
            headers={**(headers or {}), "Retry-After": str(retry_after)},
            retry_after=retry_after,
        )
        self.retry_after = retry_after


class QuotaExceeded(RateLimited):
    """A quota of the project is reached. No Retry-After: a slot frees when something of
    the project ends, not at a known time."""

    code = "quota_exceeded"
    close_code = CLOSE_QUOTA

    def __init__(self, quota, limit: int):
        super().__init__(
            f"Quota reached: this project may have at most {limit} {quota.label}.",
            quota=quota.name,
            limit=limit,
        )
        self.quota = quota
