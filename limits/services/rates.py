"""Rate checks: what the HTTP guard (limits.http), the ASGI pre-check (limits.asgi) and the
sockets (limits.sockets) count.

Each check hits its counters in one round trip (limits.counters). When the counters cannot be
reached the limits fail OPEN for callers that authenticate (their requests are served,
uncounted) and CLOSED for failed authentication: an address that fails to authenticate during
the outage is refused (429) by this process, before any credential is looked at, for the
failed-authentication window or until the counters answer again.
"""

import logging
import threading
import time
from dataclasses import dataclass
from typing import NamedTuple

from tokens import crypto
from tokens.cache import TTLCache

from .. import counters, policy
from ..conf import limits_settings
from ..errors import TooManyRequests
from ..rates import Rate, address_bucket, whole_seconds

log = logging.getLogger(__name__)


class Check(NamedTuple):
    """One counter's verdict after a hit: `per` says whose counter it is ("API key", …)."""

    rate: Rate
    count: int
    reset: float
    per: str

    @property
    def exceeded(self) -> bool:
        return self.count > self.rate.limit

    @property
    def remaining(self) -> int:
        return max(0, self.rate.limit - self.count)

    @property
    def retry_after(self) -> int:
        return whole_seconds(self.reset or self.rate.period)

    def headers(self) -> dict:
        return {
            "RateLimit-Limit": str(self.rate.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(whole_seconds(self.reset or self.rate.period)),
        }


def tightest(checks) -> Check | None:
    """The check whose headers a response carries: the fewest requests left."""
    return min(checks, key=lambda c: (c.remaining, -c.reset), default=None)


def refusal(check: Check, what: str) -> TooManyRequests:
    return TooManyRequests(
        f"Too many requests: {what} is limited to {check.rate} per {check.per}. "
        f"Retry after {check.retry_after} s.",
        retry_after=check.retry_after,
        headers=check.headers(),
    )


# --- Counting ------------------------------------------------------------------------------


def _key(*parts) -> str:
    return ":".join(str(part) for part in parts)


class Counting:
    """Counters to hit (or, when the last member is False, only read), as (key, rate, per,
    count); a None rate is no limit. `items` are what limits.counters is given; `checks`
    reads its answer back (None when the counters were unavailable)."""

    def __init__(self, wanted: list[tuple[str, Rate | None, str, bool]]):
        self.wanted = wanted
        self.items = [(key, rate.period if count else 0) for key, rate, _, count in wanted if rate]

    def checks(self, counts) -> list[Check | None] | None:
        if counts is None:
            return None
        counts = iter(counts)
        return [
            None if rate is None else Check(rate, *next(counts), per)
            for _, rate, per, _ in self.wanted
        ]


def _counted(counting: Counting) -> list[Check | None] | None:
    if not counting.items:
        return counting.checks([])
    try:
        return counting.checks(counters.hit(counting.items))
    except counters.CountersUnavailable:
        return None


async def _counted_async(counting: Counting) -> list[Check | None] | None:
    if not counting.items:
        return counting.checks([])
    try:
        return counting.checks(await counters.hit_async(counting.items))
    except counters.CountersUnavailable:
        return None


def hit(*wanted: tuple[str, Rate | None, str, bool]) -> list[Check | None] | None:
    """The checks of these counters (see Counting), or None when they are unavailable."""
    return _counted(Counting(list(wanted)))


# --- Failed authentication, per address ----------------------------------------------------

# Addresses that failed to authenticate while the counters were unavailable, refused by this
# process until the monotonic time given.
_blocked: dict[str, float] = {}
_blocked_lock = threading.Lock()


def _blocked_for(bucket: str) -> float:
    until = _blocked.get(bucket, 0.0)
    return max(0.0, until - time.monotonic())


def _failed_auth_refusal(rate: Rate, reset: float, *, headers=True) -> TooManyRequests:
    retry = whole_seconds(reset or rate.period)
    check = Check(rate=rate, count=rate.limit, reset=reset or rate.period, per="address")
    return TooManyRequests(
        "Too many failed authentications from this address. "
        f"Retry after {retry} s (at most {rate} are allowed).",
        retry_after=retry,
        headers=check.headers() if headers else None,
    )


def auth_failed(address: str | None) -> TooManyRequests | None:
    """Count a failed authentication of `address`. Returns the refusal to answer instead
    when the count cannot be kept (the limit fails closed), else None."""
    rate = policy.failed_auth_rate() if policy.rate_limits_on() else None
    if rate is None:
        return None
    bucket = address_bucket(address)
    checks = hit((_key("fail", bucket), rate, "address", True))
    if checks is not None:
        return None
    with _blocked_lock:
        if len(_blocked) > 100_000:
            _blocked.clear()
        _blocked[bucket] = time.monotonic() + rate.period
    return _failed_auth_refusal(rate, rate.period, headers=False)


@dataclass(frozen=True)
class Admission:
    """What was counted before authentication: the address's check (for the headers), the
    refusal to answer instead (or None), and the presented credential's digest with its
    check, counted at the rate its project was last seen with here (the settings' until then)."""

    checks: tuple = ()
    refusal: TooManyRequests | None = None
    digest: str | None = None
    credential: Check | None = None
    guess: Rate | None = None  # the rate the credential was counted at


def _credential_key(scope: str, rate: Rate, digest: str) -> str:
    # The period is part of the name: a project's own rate may have another window.
    return _key("cred", scope, rate.period, digest)


# Per credential digest and scope: the rate its project had when last seen in this process.
_credential_rates = TTLCache(lambda: limits_settings.PROJECT_CACHE_SECONDS)


class _Admitting:
    """What `admit` counts, and the Admission its counts make."""

    def __init__(self, address, *, scope, connect, credential):
        self.bucket = bucket = address_bucket(address)
        self.failed = policy.failed_auth_rate()
        if connect:
            rate, key, self.what = policy.connect_rate(), _key("connect", bucket), "Connecting"
        else:
            rate, key, self.what = policy.address_rate(scope), _key("addr", scope, bucket), None
        self.scope = scope
        wanted = [(_key("fail", bucket), self.failed, "address", False)]
        wanted.append((key, rate, "address", True))
        self.digest = self.guess = None
        if credential and scope is not None:
            self.digest = crypto.sha256_hex(credential.encode("utf-8", "surrogatepass"))[:32]
            found, guess = _credential_rates.get((self.digest, scope))
            self.guess = guess = guess if found else policy.key_rate(scope)
            if guess is not None:
                wanted.append((_credential_key(scope, guess, self.digest), guess, "", True))
        self.counting = Counting(wanted)

    def admission(self, checks) -> Admission:
        failed = self.failed
        if checks is None:
            left = _blocked_for(self.bucket)
            if failed is not None and left > 0:
                return Admission(refusal=_failed_auth_refusal(failed, left, headers=False))
            return Admission(digest=self.digest, guess=self.guess)
        fail_check, check, *counted = checks
        if fail_check is not None and fail_check.count >= failed.limit:
            return Admission(refusal=_failed_auth_refusal(failed, fail_check.reset))
        reported = () if check is None else (check,)
        if check is not None and check.exceeded:
            return Admission(reported, refusal(check, self.what or policy.SCOPES[self.scope]))
        credential = counted[0] if counted else None
        return Admission(reported, digest=self.digest, credential=credential, guess=self.guess)


def admit(
    address: str | None,
    *,
    scope: str | None = None,
    connect: bool = False,
    credential: str | None = None,
) -> Admission:
    """Before any credential is looked at, in one round trip: refused when the address has
    used up its failed-authentication budget (or failed during an outage of the counters);
    else counts the address's request of `scope` (its WebSocket connect when `connect`) and
    the presented `credential`'s (kept as a digest: a counter only the holder of the
    credential can make grow, whether or not it authenticates)."""
    if not policy.rate_limits_on():
        return Admission()
    admitting = _Admitting(address, scope=scope, connect=connect, credential=credential)
    return admitting.admission(_counted(admitting.counting))


async def admit_async(
    address: str | None,
    *,
    scope: str | None = None,
    connect: bool = False,
    credential: str | None = None,
) -> Admission:
    """`admit` on the event loop (limits.asgi, the sockets), waiting for Redis without a
    thread."""
    if not policy.rate_limits_on():
        return Admission()
    admitting = _Admitting(address, scope=scope, connect=connect, credential=credential)
    return admitting.admission(await _counted_async(admitting.counting))


def credential_check(admission: Admission, *, scope: str, per: str, project_id) -> Check | None:
    """Once the credential authenticated: its check at its project's rate of `scope`
    (`per` names it in a 429: "API key", "token"). Counted before authentication already,
    unless its project's rate has another window (a second round trip, then remembered)."""
    if admission.digest is None or not policy.rate_limits_on():
        return None
    rate = policy.key_rate(scope, project_id)
    if rate != admission.guess:
        _credential_rates.put((admission.digest, scope), rate)
    if rate is None:
        return None
    counted = admission.credential
    if counted is not None and counted.rate.period == rate.period:
        return counted._replace(rate=rate, per=per)
    checks = hit((_credential_key(scope, rate, admission.digest), rate, per, True))
    return None if checks is None else checks[0]


# --- Frames of one socket (in this process: a socket lives in one) -------------------------


class FrameWindow:
    """Counts one socket's frames in fixed windows of its rate."""

    def __init__(self, rate: Rate | None):
        self.rate = rate
        self._start = time.monotonic()
        self._count = 0

    def refusal(self, what: str) -> TooManyRequests | None:
        """Count a frame; the refusal when it is over the rate."""
        if self.rate is None or not policy.rate_limits_on():
            return None
        now = time.monotonic()
        if now - self._start >= self.rate.period:
            self._start, self._count = now, 0
        self._count += 1
        if self._count <= self.rate.limit:
            return None
        retry = whole_seconds(self.rate.period - (now - self._start))
        return TooManyRequests(
            f"Too many {what} on this socket: at most {self.rate}. Retry after {retry} s.",
            retry_after=retry,
        )


def reset() -> None:
    """Forget every counter, this process's blocks and its cache of projects' limits."""
    counters.clear()
    with _blocked_lock:
        _blocked.clear()
    _credential_rates.clear()
    policy.forget()
