"""Credentials: projects, their API keys, and the signing keys that sign their tokens.

A process caches signing keys for SIGNING_KEY_CACHE_SECONDS (tokens.cache); a rotation or
retirement here drops this process's cache after commit, and reaches the others within it.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from .. import crypto
from ..cache import TTLCache
from ..conf import roomkey_settings
from ..models import ApiKey, Project, SigningKey

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


def signer_for(project: Project) -> SigningKey:
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


def key_by_kid(kid: str) -> SigningKey | None:
    hit, key = _keys_by_kid.get(kid)
    if not hit:
        key = SigningKey.objects.filter(kid=kid, retired_at__isnull=True).first()
        _keys_by_kid.put(kid, key)
    return key
