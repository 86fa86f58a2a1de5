"""Writes and token checks: the one place where credentials and tokens are made and judged.

The admin, the API views and the management commands all call these functions.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.utils import timezone

from . import crypto, kinds
from .cache import TTLCache
from .conf import roomkey_settings
from .kinds import Decoded, TokenKind
from .models import ApiKey, IssuedToken, Project, SigningKey
from .signals import tokens_revoked

# --- Projects and API keys ----------------------------------------------------------------


@dataclass(frozen=True)
class NewApiKey:
    row: ApiKey
    raw: str  # shown once, never stored


@transaction.atomic
def project_create(*, name: str) -> tuple[Project, NewApiKey]:
    """A project with its first signing key and API key."""
    project = Project.objects.create(name=name)
    signing_key_create(project=project)
    return project, api_key_create(project=project, name="first key")


def api_key_create(*, project: Project, name: str = "", expires_at=None) -> NewApiKey:
    prefix, raw = crypto.new_api_key()
    row = ApiKey.objects.create(
        project=project,
        name=name,
        prefix=prefix,
        digest=crypto.api_key_digest(raw),
        expires_at=expires_at,
    )
    return NewApiKey(row=row, raw=raw)


def api_key_revoke(*, api_key: ApiKey) -> bool:
    return bool(
        ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
    )


def api_key_authenticate(*, raw: str, project_id: str | None = None) -> ApiKey | None:
    """The usable key `raw` names (in project `project_id` when given), or None.

    Every failure returns None, so that callers cannot tell an unknown project from a wrong,
    expired or revoked key.
    """
    prefix = crypto.api_key_prefix(raw)
    if prefix is None:
        return None
    key = ApiKey.objects.select_related("project").filter(prefix=prefix).order_by().first()
    # The digest is compared even when no row matched, so an unknown prefix takes as long
    # as a wrong key.
    stored = key.digest if key is not None else _NO_DIGEST
    if not crypto.digests_match(stored, crypto.api_key_digest(raw)) or key is None:
        return None
    if project_id is not None and str(key.project_id) != project_id:
        return None
    now = timezone.now()
    if not key.is_usable_at(now):
        return None
    _api_key_touch(key, now)
    return key


_NO_DIGEST = "0" * 64


def _api_key_touch(key: ApiKey, now: datetime) -> None:
    # At most one write a minute per key: the filter makes concurrent requests race for the
    # same single UPDATE instead of each writing.
    interval = timedelta(seconds=roomkey_settings.API_KEY_TOUCH_SECONDS)
    if key.last_used_at is not None and now - key.last_used_at < interval:
        return
    ApiKey.objects.filter(pk=key.pk).exclude(last_used_at__gt=now - interval).update(
        last_used_at=now
    )
    key.last_used_at = now


# --- Signing keys -------------------------------------------------------------------------


def _key_cache_seconds() -> float:
    return roomkey_settings.SIGNING_KEY_CACHE_SECONDS


# Bounded: unknown kids in garbage tokens must not grow them forever.
_keys_by_kid = TTLCache(_key_cache_seconds, max_entries=4096)
_signer_by_project = TTLCache(_key_cache_seconds, max_entries=4096)


def signing_keys_forget() -> None:
    """Drop this process's cached keys (other processes re-read within the cache TTL)."""
    _keys_by_kid.clear()
    _signer_by_project.clear()


def signing_key_create(*, project: Project) -> SigningKey:
    key = SigningKey.objects.create(
        project=project, kid=crypto.new_kid(), secret=crypto.new_signing_secret()
    )
    transaction.on_commit(signing_keys_forget)
    return key


@transaction.atomic
def signing_key_rotate(*, project: Project) -> SigningKey:
    """A new signing key; older active keys stop signing but keep verifying until retired."""
    new = signing_key_create(project=project)
    SigningKey.objects.filter(project=project, active=True).exclude(pk=new.pk).update(active=False)
    return new


def signing_key_retire(*, key: SigningKey) -> None:
    """After this, tokens signed with `key` no longer verify."""
    SigningKey.objects.filter(pk=key.pk, retired_at__isnull=True).update(
        retired_at=timezone.now(), active=False
    )
    transaction.on_commit(signing_keys_forget)


def _signer_for(project: Project) -> SigningKey:
    pid = str(project.pk)
    hit, key = _signer_by_project.get(pid)
    if not hit or key is None:
        key = (
            SigningKey.objects.filter(project=project, active=True, retired_at__isnull=True)
            .order_by("-created_at", "-id")
            .first()
        )
        if key is None:
            # Not cached: the caller's transaction may yet roll this key back.
            return signing_key_create(project=project)
        _signer_by_project.put(pid, key)
    return key


def _key_by_kid(kid: str) -> SigningKey | None:
    hit, key = _keys_by_kid.get(kid)
    if not hit:
        key = SigningKey.objects.filter(kid=kid, retired_at__isnull=True).first()
        _keys_by_kid.put(kid, key)
    return key


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
    key = _signer_for(project)
    row = IssuedToken.objects.create(
        jti=jti,
        project=project,
        kind=kind,
        subject=subject,
        resource=resource,
        grants=grants or {},
        issued_at=datetime.fromtimestamp(iat, tz=UTC),
        expires_at=datetime.fromtimestamp(exp, tz=UTC),
        api_key=api_key,
        signing_kid=key.kid,
        client_ip=client_ip,
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
) -> IssuedToken:
    """Registry row for a token of a kind minted outside `token_issue` (LiveKit, tool)."""
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
    key = _key_by_kid(kid)
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

    Raises InvalidToken; never anything else for any input.
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
    except InvalidToken:
        raise
    except Exception:
        # A decoder bug must not turn a hostile token into a 500 or an accepted token.
        raise InvalidToken("malformed") from None


def token_verify(raw, *, kind: str | None = None, now: datetime | None = None) -> Verification:
    """Signature (algorithm pinned per kind), then kind, then expiry, then revocation.

    Returns a Verification; never raises for any input.
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
    """RFC 7662 answer for `raw` as seen by `project`: another project's token is inactive."""
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


# --- Revoking -----------------------------------------------------------------------------


def _announce_revoked(jtis: list[str], project_id) -> None:
    if jtis:
        transaction.on_commit(
            lambda: tokens_revoked.send(
                sender=IssuedToken, jtis=list(jtis), project_id=str(project_id)
            )
        )


def token_revoke(
    *, jti: str, project: Project | None = None, by: str = "", reason: str = ""
) -> bool:
    """Revoke one token. True if this call revoked it; False if it was unknown, of another
    project, or already revoked (idempotent).

    The row lock and the `revoked_at IS NULL` filter make concurrent revokes change the row
    exactly once: the second waits for the first and then finds nothing to update.
    """
    with transaction.atomic():
        qs = IssuedToken.objects.select_for_update().filter(pk=jti, revoked_at__isnull=True)
        if project is not None:
            qs = qs.filter(project=project)
        row = qs.first()
        if row is None:
            return False
        row.revoked_at = timezone.now()
        row.revoked_by = by[:200]
        row.revoke_reason = reason[:500]
        row.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
        _announce_revoked([row.jti], row.project_id)
    return True


def token_revoke_raw(raw, *, project: Project, by: str = "", reason: str = "") -> bool:
    """RFC 7009 revocation of a token string: only the caller's own project's tokens."""
    try:
        decoded = token_decode(raw)
    except InvalidToken:
        return False
    if decoded.project_id != str(project.pk):
        return False
    return token_revoke(jti=decoded.jti, project=project, by=by, reason=reason)


def token_revoke_many(*, queryset, by: str = "", reason: str = "") -> int:
    """Revoke every not-yet-revoked token in `queryset`; returns how many this call revoked."""
    revoked = 0
    with transaction.atomic():
        # One global lock order (by primary key), whatever order the caller's queryset has:
        # two overlapping bulk revokes then queue instead of deadlocking. `of=("self",)`
        # keeps joins the caller's filters add from locking projects or API keys.
        rows = list(
            queryset.select_for_update(of=("self",))
            .filter(revoked_at__isnull=True)
            .order_by("pk")
            .values_list("jti", "project_id")
        )
        by_project: dict = {}
        for jti, project_id in rows:
            by_project.setdefault(project_id, []).append(jti)
        now = timezone.now()
        for project_id, jtis in by_project.items():
            for start in range(0, len(jtis), 500):
                chunk = jtis[start : start + 500]
                revoked += IssuedToken.objects.filter(pk__in=chunk, revoked_at__isnull=True).update(
                    revoked_at=now, revoked_by=by[:200], revoke_reason=reason[:500]
                )
            _announce_revoked(jtis, project_id)
    return revoked


def tokens_clear_expired(*, now: datetime | None = None, batch_size: int | None = None) -> int:
    """Delete registry rows expired longer ago than TOKEN_RETENTION, a batch at a time, so a
    large purge never holds one long transaction."""
    cutoff = (now or timezone.now()) - roomkey_settings.TOKEN_RETENTION
    batch_size = batch_size or roomkey_settings.CLEAR_BATCH_SIZE
    deleted = 0
    while True:
        batch = list(
            IssuedToken.objects.filter(expires_at__lt=cutoff).values_list("pk", flat=True)[
                :batch_size
            ]
        )
        if not batch:
            return deleted
        deleted += IssuedToken.objects.filter(pk__in=batch).delete()[0]
