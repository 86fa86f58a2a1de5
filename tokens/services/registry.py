"""The issued-token registry: minting a token and its row, and judging a token string.

Every token of every kind has a row (jti, kind, subject, grants, times, issuer), written in the
caller's transaction before the token is returned, so a token that exists can always be
introspected and revoked. Verification checks the signature, then the kind, then expiry, then
the row's revocation; it never raises for bad input. A database that cannot be asked (the
signing key, the row) is no verdict: its error (tokens.errors.DATABASE_UNAVAILABLE) reaches the
caller, which answers 503, never "invalid".
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from .. import crypto, kinds
from ..conf import roomkey_settings
from ..errors import DATABASE_UNAVAILABLE
from ..kinds import Decoded, TokenKind
from ..models import ApiKey, IssuedToken, Project
from .keys import key_by_kid, signer_for

# --- Issuing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    token: str
    row: IssuedToken


def token_issue(
    *,
    project: Project,
    kind: str,
    subject: str,
    ttl: timedelta,
    grants: dict | None = None,
    resource: str = "",
    api_key: ApiKey | None = None,
    client_ip: str | None = None,
    claims: dict | None = None,
    headers: dict | None = None,
) -> Issued:
    """Mint a JWT of a project-signed `kind` and record it in the registry.

    `claims` and `headers` add to the standard ones (iss = project id, sub, jti, iat, exp;
    typ, alg, kid). Grants are kept on the row, not in the token, unless a caller puts them
    in `claims` as well.
    """
    spec = kinds.get(kind)
    if spec.typ is None or spec.alg is None:
        raise ValueError(f"{kind} tokens are not signed with the project key")
    now = timezone.now()
    iat = int(now.timestamp())
    exp = iat + int(ttl.total_seconds())
    jti = crypto.new_jti()
    key = signer_for(project)
    decoded = Decoded(
        kind=kind,
        jti=jti,
        project_id=str(project.pk),
        subject=subject,
        issued_at=iat,
        expires_at=exp,
    )
    row = record_issued(
        project=project,
        decoded=decoded,
        grants=grants,
        resource=resource,
        api_key=api_key,
        client_ip=client_ip,
        signing_kid=key.kid,
    )
    payload = {
        **(claims or {}),
        "iss": str(project.pk),
        "sub": subject,
        "jti": jti,
        "iat": iat,
        "exp": exp,
    }
    token = crypto.jwt_encode(
        payload,
        secret=bytes(key.secret),
        alg=spec.alg,
        headers={**(headers or {}), "typ": spec.typ, "kid": key.kid},
    )
    return Issued(token=token, row=row)


def record_issued(
    *,
    project: Project,
    decoded: Decoded,
    grants: dict | None = None,
    resource: str = "",
    api_key: ApiKey | None = None,
    client_ip: str | None = None,
    signing_kid: str = "",
) -> IssuedToken:
    """The registry row of a token: `token_issue`'s, and those of kinds minted elsewhere
    (LiveKit, tool), which pass what their own decoder reads from the token."""
    return IssuedToken.objects.create(
        jti=decoded.jti,
        project=project,
        kind=decoded.kind,
        subject=decoded.subject,
        resource=resource,
        grants=grants or {},
        issued_at=datetime.fromtimestamp(decoded.issued_at, tz=UTC),
        expires_at=datetime.fromtimestamp(decoded.expires_at, tz=UTC),
        api_key=api_key,
        signing_kid=signing_kid,
        client_ip=client_ip,
    )


# --- Verifying ----------------------------------------------------------------------------


class InvalidToken(Exception):
    """Raised by decoders; `reason` is one of Verification's reasons."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Verification:
    """The outcome of checking a token. Reasons when invalid: malformed, oversize,
    bad_signature, wrong_kind, expired, unknown (no registry row), revoked."""

    valid: bool
    reason: str = ""
    kind: str = ""
    decoded: Decoded | None = None
    row: IssuedToken | None = None


def _int_claim(claims: dict, name: str) -> int:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidToken("malformed")
    return value


def _str_claim(claims: dict, name: str, max_length: int = 256) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise InvalidToken("malformed")
    return value


def _decode_project_jwt(raw: str, spec: TokenKind | None) -> Decoded:
    """Signature with the kind's pinned algorithm, then kind (typ), then claim shapes.

    With `spec` None the kind is taken from the header's typ (introspection of any token).
    """
    try:
        header = crypto.jwt_header(raw)
    except crypto.MalformedToken:
        raise InvalidToken("malformed") from None
    if spec is None:
        spec = kinds.by_typ(header.get("typ"))
        if spec is None:
            raise InvalidToken("wrong_kind")
    # The algorithm is pinned per kind: "none", RS256-with-an-HMAC-secret and every other
    # substitution fail here, before any key is used.
    if header.get("alg") != spec.alg:
        raise InvalidToken("bad_signature")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > 64:
        raise InvalidToken("bad_signature")
    key = key_by_kid(kid)
    if key is None:
        raise InvalidToken("bad_signature")
    try:
        claims = crypto.jwt_decode(raw, secret=bytes(key.secret), alg=spec.alg)
    except crypto.BadSignature:
        raise InvalidToken("bad_signature") from None
    except crypto.MalformedToken:
        raise InvalidToken("malformed") from None
    if header.get("typ") != spec.typ:
        raise InvalidToken("wrong_kind")
    # A key only ever signs for its own project.
    if claims.get("iss") != str(key.project_id):
        raise InvalidToken("bad_signature")
    return Decoded(
        kind=spec.name,
        jti=_str_claim(claims, "jti", 64),
        project_id=str(key.project_id),
        subject=_str_claim(claims, "sub"),
        issued_at=_int_claim(claims, "iat"),
        expires_at=_int_claim(claims, "exp"),
        claims=claims,
    )


def _decode(raw: str, kind: str | None) -> Decoded:
    if kind is not None:
        spec = kinds.get(kind)
        if spec.decoder is not None:
            return spec.decoder(raw)
        return _decode_project_jwt(raw, spec)
    for spec in kinds.all_kinds():
        if spec.decoder is not None and spec.sniff is not None and spec.sniff(raw):
            return spec.decoder(raw)
    return _decode_project_jwt(raw, None)


def _within_kind_limit(raw: str) -> bool:
    if len(raw) > roomkey_settings.MAX_BODY_BYTES:
        return False
    try:
        limit = kinds.max_bytes_for(raw)
    except Exception:
        return False
    return limit is not None and len(raw) <= limit


def token_decode(raw, *, kind: str | None = None) -> Decoded:
    """Check a token's form, signature and kind, but not expiry or revocation.

    Raises InvalidToken for any input it refuses, and the database's error when the database
    cannot be asked (a signing key, a kind's own row): never anything else.
    """
    if isinstance(raw, bytes):
        if len(raw) > roomkey_settings.MAX_BODY_BYTES:
            raise InvalidToken("oversize")
        try:
            raw = raw.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidToken("malformed") from None
    if not isinstance(raw, str):
        raise InvalidToken("malformed")
    # Oversize tokens are refused before any decoding work is spent on them, unless a kind
    # that allows larger tokens recognises the header (sniffing reads the header only).
    if len(raw) > roomkey_settings.MAX_TOKEN_BYTES and not _within_kind_limit(raw):
        raise InvalidToken("oversize")
    if not raw or not raw.isascii():
        raise InvalidToken("malformed")
    try:
        return _decode(raw, kind)
    except (InvalidToken, *DATABASE_UNAVAILABLE):
        raise
    except Exception:
        # A decoder bug must not turn a hostile token into a 500 or an accepted token.
        raise InvalidToken("malformed") from None


def token_verify(raw, *, kind: str | None = None, now: datetime | None = None) -> Verification:
    """Signature (algorithm pinned per kind), then kind, then expiry, then revocation.

    Returns a Verification for any input; raises only the database's error when the database
    cannot be asked (tokens.errors.DATABASE_UNAVAILABLE), which says nothing of the token.
    """
    try:
        decoded = token_decode(raw, kind=kind)
    except InvalidToken as exc:
        return Verification(valid=False, reason=exc.reason)
    now_ts = (now or timezone.now()).timestamp()
    if decoded.expires_at <= now_ts:
        return Verification(valid=False, reason="expired", kind=decoded.kind, decoded=decoded)
    row = (
        IssuedToken.objects.select_related("project")
        .filter(jti=decoded.jti, kind=decoded.kind, project_id=decoded.project_id)
        .first()
    )
    if row is None:
        return Verification(valid=False, reason="unknown", kind=decoded.kind, decoded=decoded)
    if row.revoked_at is not None:
        return Verification(
            valid=False, reason="revoked", kind=decoded.kind, decoded=decoded, row=row
        )
    return Verification(valid=True, kind=decoded.kind, decoded=decoded, row=row)


def token_introspect(raw, *, project: Project) -> dict:
    """RFC 7662 answer for `raw` as seen by `project`: another project's token is inactive.
    When the database cannot be asked its error is raised (a 503): "inactive" would tell a
    resource server to refuse a valid token."""
    result = token_verify(raw)
    if not result.valid or str(result.row.project_id) != str(project.pk):
        return {"active": False}
    row, decoded = result.row, result.decoded
    return {
        "active": True,
        "kind": row.kind,
        "token_type": row.kind,
        "iss": decoded.project_id,
        "sub": row.subject,
        "jti": row.jti,
        "iat": decoded.issued_at,
        "exp": decoded.expires_at,
        "grants": row.grants,
    }
