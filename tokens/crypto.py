"""Every encode, decode, hash and random draw Roomkey does for credentials lives here.

Nothing else imports `jwt`, `hashlib` or `secrets` for tokens: one place to audit.
"""

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
from datetime import datetime
from typing import NamedTuple

import jwt
from django.views.decorators.debug import sensitive_variables

API_KEY_PREFIX_CHARS = 12  # hex characters of the public, indexed part of an API key
SIGNING_SECRET_BYTES = 64  # HS512 wants a key at least as long as its 512-bit output
MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59Z, the last second a datetime can hold


class MalformedToken(Exception):
    """The token cannot be parsed; the message says what was wrong (never echoed to clients)."""


def new_jti() -> str:
    # Hex, not url-safe base64: a jti starting with "-" would read as an option on the CLI.
    return secrets.token_hex(16)


def new_kid() -> str:
    return secrets.token_urlsafe(12)


def new_signing_secret() -> bytes:
    return secrets.token_bytes(SIGNING_SECRET_BYTES)


def new_password() -> str:
    return secrets.token_urlsafe(15)


# --- API keys -----------------------------------------------------------------------------
# Format: "rk_" + 12 hex (public prefix, the lookup key) + "_" + 43 url-safe characters.


def new_api_key() -> tuple[str, str]:
    """Return (prefix, raw key). Only the digest of the raw key is ever stored."""
    prefix = secrets.token_hex(API_KEY_PREFIX_CHARS // 2)
    return prefix, f"rk_{prefix}_{secrets.token_urlsafe(32)}"


def api_key_prefix(raw: str) -> str | None:
    """The lookup prefix of a well-formed key, or None."""
    n = API_KEY_PREFIX_CHARS
    if len(raw) != 3 + n + 1 + 43 or not raw.startswith("rk_") or raw[3 + n] != "_":
        return None
    prefix = raw[3 : 3 + n]
    if any(c not in "0123456789abcdef" for c in prefix):
        return None
    return prefix


def api_key_digest(raw: str) -> str:
    # A plain SHA-256 suffices: the key carries 256 random bits, so there is nothing to
    # brute-force that a slow hash would protect.
    return hashlib.sha256(raw.encode()).hexdigest()


def digests_match(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def decode_basic_credentials(encoded: bytes) -> tuple[str, str] | None:
    try:
        user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return (user, password) if sep else None


# --- JWTs ---------------------------------------------------------------------------------


@sensitive_variables()  # keep key material out of error reports
def jwt_encode(claims: dict, *, secret: bytes, alg: str, headers: dict) -> str:
    return jwt.encode(claims, secret, algorithm=alg, headers=headers)


def jwt_header(raw: str) -> dict:
    """The unverified header, for picking the kind and key. Raises MalformedToken."""
    try:
        header = jwt.get_unverified_header(raw)
    except (jwt.PyJWTError, ValueError, TypeError, json.JSONDecodeError) as exc:
        raise MalformedToken(str(exc)) from None
    if not isinstance(header, dict):
        raise MalformedToken("header is not an object")
    return header


def jwt_unverified_claims(raw: str) -> dict:
    """The claims WITHOUT checking the signature: only for finding which key to check it
    with (a LiveKit token's jti names its registry row and so its project). Raises
    MalformedToken."""
    try:
        claims = jwt.decode(raw, options={"verify_signature": False})
    except (jwt.PyJWTError, ValueError, TypeError, json.JSONDecodeError) as exc:
        raise MalformedToken(str(exc)) from None
    if not isinstance(claims, dict):
        raise MalformedToken("claims are not an object")
    return claims


class BadSignature(Exception):
    pass


@sensitive_variables()  # keep key material out of error reports
def jwt_decode(raw: str, *, secret: bytes, alg: str) -> dict:
    """Check the signature with exactly `alg` and return the claims.

    Expiry and the other time claims are checked by the caller, after the kind, so that the
    order of checks (signature, kind, expiry, revocation) is the same for every kind.
    Raises BadSignature or MalformedToken.
    """
    try:
        claims = jwt.decode(
            raw,
            secret,
            algorithms=[alg],
            options={
                "verify_signature": True,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
                "verify_sub": False,
                "verify_jti": False,
            },
        )
    except jwt.InvalidSignatureError:
        raise BadSignature() from None
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise MalformedToken(str(exc)) from None
    if not isinstance(claims, dict):
        raise MalformedToken("claims are not an object")
    return claims


# --- SignalWire tool tokens (agents, issue 5) ---------------------------------------------
# Wire format of signalwire-sdk's SessionManager: url-safe base64 (padded) of
# "call_id.function.expiry.nonce.signature", the signature being the hex HMAC-SHA256, keyed
# with the secret's UTF-8 bytes, of "call_id:function:expiry:nonce".

TOOL_SECRET_BYTES = 32  # hex-encoded, as the SDK's own default secret (secrets.token_hex(32))

_URLSAFE = bytes.maketrans(b"-_", b"+/")
# Function names as tool-calling APIs define them. Neither "." (the token's separator) nor ":"
# (the signed message's) may occur: with a ":" allowed, "a" + "b:c" and "a:b" + "c" would sign
# the same message, so one token could be turned into another.
TOOL_FUNCTION = re.compile(r"[A-Za-z0-9_-]{1,64}")
TOOL_CALL_ID_MAX = 256
_HEX = "0123456789abcdef"


def new_tool_secret() -> str:
    return secrets.token_hex(TOOL_SECRET_BYTES)


def new_call_id() -> str:
    # What the SDK's create_session() makes when given no id.
    return secrets.token_urlsafe(16)


class ToolTokenParts(NamedTuple):
    call_id: str
    function: str
    expiry: int
    nonce: str
    signature: str
    text: str  # the decoded token, whose hash is the token's jti


def _tool_signature(key: bytes, call_id: str, function: str, expiry: str, nonce: str) -> str:
    message = f"{call_id}:{function}:{expiry}:{nonce}".encode()
    return hmac.digest(key, message, "sha256").hex()


@sensitive_variables()  # keep key material out of error reports
def tool_token_encode(*, secret: str, call_id: str, function: str, expiry: int) -> str:
    nonce = secrets.token_hex(8)
    signature = _tool_signature(secret.encode(), call_id, function, str(expiry), nonce)
    text = f"{call_id}.{function}.{expiry}.{nonce}.{signature}"
    return base64.urlsafe_b64encode(text.encode()).decode()


def tool_token_parse(raw: str) -> ToolTokenParts:
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
    if not 0 < len(call_id) <= TOOL_CALL_ID_MAX or not call_id.isprintable():
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
def tool_token_signed_with(parts: ToolTokenParts, key: bytes) -> bool:
    """`key`: the secret's UTF-8 bytes."""
    expected = _tool_signature(key, parts.call_id, parts.function, str(parts.expiry), parts.nonce)
    return hmac.compare_digest(parts.signature, expected)


def tool_token_jti(parts: ToolTokenParts) -> str:
    # Derived from the decoded text, not the base64 spelling: a token and any re-encoding of it
    # are the same token for revocation and use counting. One-way, so the registry row (and the
    # admin) never hold what it takes to rebuild the token.
    return hashlib.sha256(b"roomkey-tool:" + parts.text.encode()).hexdigest()[:32]


def tool_token_fields(raw) -> dict:
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
