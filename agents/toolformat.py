"""The wire format of tool tokens: signalwire-sdk's SessionManager tokens (seed 001).

A token is url-safe base64 (padded) of "call_id.function.expiry.nonce.signature", the
signature being the hex HMAC-SHA256, keyed with the secret's UTF-8 bytes, of
"call_id:function:expiry:nonce". Roomkey's tokens validate in the SDK given the same secret,
and the SDK's in Roomkey. The primitives (HMAC, hashing, randomness) are tokens.crypto's.
"""

import base64
import binascii
import re
import time
from datetime import datetime
from typing import NamedTuple

from django.views.decorators.debug import sensitive_variables

from tokens import crypto
from tokens.crypto import MalformedToken

SECRET_BYTES = 32  # hex-encoded, as the SDK's own default secret (secrets.token_hex(32))
MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59Z, the last second a datetime can hold

# Function names as tool-calling APIs define them. Neither "." (the token's separator) nor ":"
# (the signed message's) may occur: with a ":" allowed, "a" + "b:c" and "a:b" + "c" would sign
# the same message, so one token could be turned into another.
FUNCTION = re.compile(r"[A-Za-z0-9_-]{1,64}")
CALL_ID_MAX = 256

_URLSAFE = bytes.maketrans(b"-_", b"+/")
_HEX = "0123456789abcdef"


def new_secret() -> str:
    return crypto.random_hex(SECRET_BYTES)


def new_call_id() -> str:
    # What the SDK's create_session() makes when given no id.
    return crypto.random_urlsafe(16)


class ToolTokenParts(NamedTuple):
    call_id: str
    function: str
    expiry: int
    nonce: str
    signature: str
    text: str  # the decoded token, whose hash is the token's jti


def _signature(key: bytes, call_id: str, function: str, expiry: str, nonce: str) -> str:
    return crypto.hmac_sha256_hex(key, f"{call_id}:{function}:{expiry}:{nonce}".encode())


@sensitive_variables()  # keep key material out of error reports
def encode(*, secret: str, call_id: str, function: str, expiry: int) -> str:
    nonce = crypto.random_hex(8)
    signature = _signature(secret.encode(), call_id, function, str(expiry), nonce)
    text = f"{call_id}.{function}.{expiry}.{nonce}.{signature}"
    return base64.urlsafe_b64encode(text.encode()).decode()


def parse(raw: str) -> ToolTokenParts:
    """The fields of a tool token, strictly: canonical url-safe base64 only, so that one token
    has one spelling. Raises MalformedToken. The signature is not checked here."""
    # "+" and "/" (standard base64) would decode too; strict mode refuses everything else
    # outside the alphabet, and missing or misplaced padding.
    if not isinstance(raw, str) or "+" in raw or "/" in raw or not raw.isascii():
        raise MalformedToken("not url-safe base64")
    try:
        text = binascii.a2b_base64(raw.encode().translate(_URLSAFE), strict_mode=True).decode()
    except (binascii.Error, UnicodeError, ValueError):
        raise MalformedToken("not url-safe base64 of UTF-8 text") from None
    parts = text.rsplit(".", 4)  # the call id may contain dots; the other fields never do
    if len(parts) != 5:
        raise MalformedToken(f"{len(parts)} parts, not 5")
    call_id, function, expiry, nonce, signature = parts
    # str methods rather than regular expressions: this runs on every validation.
    if not 0 < len(call_id) <= CALL_ID_MAX or not call_id.isprintable():
        raise MalformedToken("bad call id")
    if not (
        0 < len(function) <= 64
        and function.isascii()
        and function.replace("_", "a").replace("-", "a").isalnum()
    ):
        raise MalformedToken("bad function name")
    if not (0 < len(expiry) <= 11 and expiry.isascii() and expiry.isdigit()):
        raise MalformedToken("bad expiry")
    if not 8 <= len(nonce) <= 64 or nonce.strip(_HEX) or len(signature) != 64:
        raise MalformedToken("bad nonce or signature")
    if signature.strip(_HEX):
        raise MalformedToken("bad signature")
    expires = int(expiry)
    if expires > MAX_EPOCH:
        raise MalformedToken("bad expiry")
    return ToolTokenParts(call_id, function, expires, nonce, signature, text)


@sensitive_variables()  # keep key material out of error reports
def signed_with(parts: ToolTokenParts, key: bytes) -> bool:
    """`key`: the secret's UTF-8 bytes."""
    expected = _signature(key, parts.call_id, parts.function, str(parts.expiry), parts.nonce)
    return crypto.digests_match(parts.signature, expected)


def jti(parts: ToolTokenParts) -> str:
    # Derived from the decoded text, not the base64 spelling: a token and any re-encoding of it
    # are the same token for revocation and use counting. One-way, so the registry row (and the
    # admin) never hold what it takes to rebuild the token.
    return crypto.sha256_hex(b"roomkey-tool:" + parts.text.encode())[:32]


def fields(raw) -> dict:
    """signalwire-sdk's debug_token() answer for `raw`, without checking anything: the same
    keys, the same shortening of the call id and signature, the same local-time expiry_date."""
    length = len(raw) if isinstance(raw, str) and raw else 0
    try:
        text = base64.urlsafe_b64decode(raw.encode()).decode()
        parts = text.rsplit(".", 4)
        if len(parts) != 5:
            return {"valid_format": False, "parts_count": len(parts), "token_length": length}
        call_id, function, expiry, nonce, signature = parts
        now = int(time.time())
        try:
            expires = int(expiry)
            is_expired = expires < now
            expires_in = expires - now if not is_expired else 0
            expiry_date = datetime.fromtimestamp(expires).isoformat()
        except (ValueError, OverflowError, OSError):
            is_expired = expires_in = expiry_date = None
        return {
            "valid_format": True,
            "components": {
                "call_id": call_id[:8] + "..." if len(call_id) > 8 else call_id,
                "function": function,
                "expiry": expiry,
                "expiry_date": expiry_date,
                "nonce": nonce,
                "signature": signature[:8] + "...",
            },
            "status": {
                "current_time": now,
                "is_expired": is_expired,
                "expires_in_seconds": expires_in,
            },
        }
    except Exception as exc:  # as the SDK: anything undecodable is reported, not raised
        return {"valid_format": False, "error": str(exc)[:200], "token_length": length}
