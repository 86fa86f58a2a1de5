"""Rates ("N/period") and the client addresses they are counted per."""

import functools
import ipaddress
import math
import re
from dataclasses import dataclass

_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600}
_UNITS |= {"hour": 3600, "d": 86400, "day": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+?)s?\s*$")


@dataclass(frozen=True)
class Rate:
    """At most `limit` events per window of `period` seconds. A window starts at the first
    event and lasts `period` (a fixed window per counter, not aligned to the clock)."""

    limit: int
    period: int

    def __str__(self) -> str:
        return f"{self.limit} per {describe_period(self.period)}"


def describe_period(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds == size:
            return unit
        if seconds % size == 0:
            return f"{seconds // size} {unit}s"
    return "second" if seconds == 1 else f"{seconds} seconds"


@functools.lru_cache(maxsize=256)
def parse_rate(text) -> Rate | None:
    """ "600/min", "200/10s", "5/hour" -> Rate; None or "" -> None (no limit). Raises
    ValueError for anything else."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    match = _RATE.match(str(text).lower()) if isinstance(text, str) else None
    if match is None or match.group(3) not in _UNITS:
        raise ValueError(f'{text!r} is not a rate such as "600/min" or "20/10s".')
    limit, multiple, unit = int(match.group(1)), int(match.group(2) or 1), match.group(3)
    if multiple == 0:
        raise ValueError(f"{text!r}: the period must be longer than 0.")
    return Rate(limit=limit, period=multiple * _UNITS[unit])


def whole_seconds(seconds: float) -> int:
    """Seconds for a header: rounded up, at least 1."""
    return max(1, math.ceil(seconds))


@functools.lru_cache(maxsize=65536)
def address_bucket(address: str | None) -> str:
    """What an address is counted as: itself for IPv4, its /64 for IPv6 (one subscriber
    holds a whole /64), "unknown" when the server reports no IP address."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return "unknown"
    if ip.version == 4:
        return str(ip)
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False).network_address) + "/64"
