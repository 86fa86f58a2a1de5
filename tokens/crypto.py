"""Every signature, hash and random draw Roomkey does for credentials lives here: JWTs, API
keys, and the primitives (HMAC, SHA-256, random strings) of formats defined elsewhere, such
as the tool tokens' wire format (agents.toolformat).

Nothing else imports `jwt`, `hashlib`, `hmac` or `secrets` for tokens: one place to audit.
"""

import base64
import binascii
import hashlib
import hmac
import json
import secrets

import jwt
from django.views.decorators.debug import sensitive_variables

API_KEY_PREFIX_CHARS = 12  # hex characters of the public, indexed part of an API key
SIGNING_SECRET_BYTES = 64  # HS512 wants a key at least as long as its 512-bit output


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

_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _require_canonical(raw: str) -> None:
    """A JWS in compact form has one spelling: three segments of unpadded base64url, each the
    canonical encoding of its bytes. Base64 decoders also take padding (`==`) and unused
    trailing bits set, so without this one token would have many strings, each passing
    verification (and, for a cache or a log keyed by the string, counting as another token).
    Raises MalformedToken."""
    segments = raw.split(".")
    if len(segments) != 3:
        raise MalformedToken("not three segments")
    for segment in segments:
        if not _B64URL.issuperset(segment):
            raise MalformedToken("not unpadded base64url")
        try:
            decoded = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        except (binascii.Error, ValueError):
            raise MalformedToken("not base64url") from None
        if base64.urlsafe_b64encode(decoded).rstrip(b"=").decode() != segment:
            raise MalformedToken("not the canonical encoding")


@sensitive_variables()  # keep key material out of error reports
def jwt_encode(claims: dict, *, secret: bytes, alg: str, headers: dict) -> str:
    return jwt.encode(claims, secret, algorithm=alg, headers=headers)


def jwt_header(raw: str) -> dict:
    """The unverified header, for picking the kind and key. Raises MalformedToken."""
    _require_canonical(raw)
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
    _require_canonical(raw)
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
    _require_canonical(raw)
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


# --- Primitives for token formats defined elsewhere (the agents' tool tokens) -------------


def random_hex(nbytes: int) -> str:
    return secrets.token_hex(nbytes)


def random_urlsafe(nbytes: int) -> str:
    return secrets.token_urlsafe(nbytes)


@sensitive_variables()  # keep key material out of error reports
def hmac_sha256_hex(key: bytes, message: bytes) -> str:
    return hmac.digest(key, message, "sha256").hex()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
