"""Tool tokens through the service: what Roomkey adds to the SDK's checks (revocation,
max_uses, session end, secret rotation with a grace window), garbage tokens, and the
per-process cache that keeps validation cheap."""

import base64
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from signalwire.core.security.session_manager import SessionManager as SdkSessionManager

from agents import services, tooltokens
from agents.models import CallSession, ToolSecret, ToolToken
from tokens import services as token_services
from tokens.errors import BadInput
from tokens.models import IssuedToken


def check(project, token, *, call_id="call-1", function="fn", **kwargs):
    return services.tool_token_validate(
        project=project, call_id=call_id, function=function, token=token, **kwargs
    )


def issue(session, function="fn", **kwargs):
    return services.tool_token_issue(session=session, function=function, **kwargs)


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def test_issue_records_the_token(project, session):
    issued = issue(session, ttl=60, max_uses=3)
    row = IssuedToken.objects.get(pk=issued.row.pk)
    assert (row.kind, row.subject, row.resource) == ("tool", "call-1", "fn")
    assert row.grants == {"function": "fn", "max_uses": 3}
    assert row.project == project
    assert 59 <= (row.expires_at - row.issued_at).total_seconds() <= 60
    assert ToolToken.objects.get(pk=row.pk).session == session
    # The registry never holds the token, nor its signature.
    decoded = base64.urlsafe_b64decode(issued.token).decode()
    assert issued.token not in str(row.__dict__) and decoded[-64:] not in str(row.__dict__)
    assert check(project, issued.token).valid


@pytest.mark.parametrize(
    ("kwargs", "ok"),
    [
        ({"function": "f" * 64}, True),
        ({"function": "f" * 65}, False),
        ({"function": "a.b"}, False),
        ({"function": "a:b"}, False),
        ({"function": ""}, False),
        ({"ttl": 1}, True),
        ({"ttl": 0}, False),
        ({"ttl": 86400}, True),
        ({"ttl": 86401}, False),
        ({"max_uses": 1}, True),
        ({"max_uses": 0}, False),
        ({"max_uses": 1_000_000}, True),
        ({"max_uses": 1_000_001}, False),
    ],
)
def test_issue_limits(session, kwargs, ok):
    kwargs = {"function": "fn", **kwargs}
    if ok:
        assert issue(session, **kwargs).token
    else:
        with pytest.raises(BadInput):
            issue(session, **kwargs)
        assert not IssuedToken.objects.exists()


def test_revoked_token_is_refused(project, session, django_capture_on_commit_callbacks):
    issued = issue(session)
    assert check(project, issued.token).valid  # now cached as not revoked
    with django_capture_on_commit_callbacks(execute=True):
        assert token_services.token_revoke(jti=issued.row.pk, project=project)
    assert check(project, issued.token).reason == "revoked"


def test_revocation_reaches_the_cache_only_through_the_signal(
    project, session, settings, django_capture_on_commit_callbacks
):
    # Without the tokens_revoked signal (another process revoked it), this process trusts
    # what it read for TOOL_STATE_CACHE_SECONDS, then reads again.
    settings.ROOMKEY_AGENTS = {**settings.ROOMKEY_AGENTS, "TOOL_STATE_CACHE_SECONDS": 0.3}
    issued = issue(session)
    assert check(project, issued.token).valid
    IssuedToken.objects.filter(pk=issued.row.pk).update(revoked_at=timezone.now())
    assert check(project, issued.token).valid
    time.sleep(0.35)
    assert check(project, issued.token).reason == "revoked"


def test_cache_off_reads_every_time(project, session, settings):
    settings.ROOMKEY_AGENTS = {**settings.ROOMKEY_AGENTS, "TOOL_STATE_CACHE_SECONDS": 0}
    issued = issue(session)
    assert check(project, issued.token).valid
    IssuedToken.objects.filter(pk=issued.row.pk).update(revoked_at=timezone.now())
    assert check(project, issued.token).reason == "revoked"


@pytest.mark.parametrize("max_uses", [1, 3])
def test_max_uses(project, session, max_uses):
    issued = issue(session, max_uses=max_uses)
    # A look (debug) counts nothing.
    assert check(project, issued.token, consume=False).valid
    for _ in range(max_uses):
        assert check(project, issued.token).valid
    assert check(project, issued.token).reason == "used_up"
    assert check(project, issued.token, consume=False).reason == "used_up"
    assert ToolToken.objects.get(pk=issued.row.pk).uses == max_uses
    row = IssuedToken.objects.get(pk=issued.row.pk)
    assert row.revoke_reason == "used up" and row.revoked_at is not None


def test_revoked_limited_token(project, session):
    issued = issue(session, max_uses=5)
    assert check(project, issued.token).valid
    token_services.token_revoke(jti=issued.row.pk)
    assert check(project, issued.token).reason == "revoked"
    assert ToolToken.objects.get(pk=issued.row.pk).uses == 1


def test_session_end_stops_its_tokens(project, session, secret):
    ours = issue(session)
    limited = issue(session, max_uses=2)
    sdk_token = SdkSessionManager(secret_key=secret).generate_token("fn", "call-1")
    for token in (ours.token, limited.token, sdk_token):
        assert check(project, token).valid
    assert services.call_session_end(session=session, by="test") is True
    assert services.call_session_end(session=session, by="test") is False  # idempotent
    for token in (ours.token, limited.token, sdk_token):
        assert check(project, token).reason == "session_ended"
    assert IssuedToken.objects.filter(revoked_at__isnull=True).count() == 0
    with pytest.raises(services.SessionEnded):
        issue(session)


def test_expired_session_stops_its_tokens(project, session):
    # A token may outlive its session's expiry; it stops validating with it all the same.
    issued = issue(session, ttl=3600)
    CallSession.objects.filter(pk=session.pk).update(
        expires_at=timezone.now() + timedelta(seconds=60)
    )
    tooltokens.forget_all()
    assert check(project, issued.token, now=time.time() + 30).valid
    assert check(project, issued.token, now=time.time() + 61).reason == "session_ended"
    with pytest.raises(services.SessionEnded):
        CallSession.objects.filter(pk=session.pk).update(expires_at=timezone.now())
        issue(session)


def test_rotation_grace_window(project, session, settings):
    settings.ROOMKEY_AGENTS = {
        **settings.ROOMKEY_AGENTS,
        "TOOL_SECRET_GRACE": timedelta(minutes=10),
    }
    old_secret = services.tool_secret_get_or_create(project=project).secret
    before = issue(session)
    sdk_before = SdkSessionManager(secret_key=old_secret).generate_token("fn", "call-1")

    row = services.tool_secret_rotate(project=project)
    assert row.secret != old_secret and row.previous_secret == old_secret
    after = issue(session)
    assert SdkSessionManager(secret_key=row.secret).validate_token("call-1", "fn", after.token)

    now = time.time()
    for token in (before.token, sdk_before, after.token):
        assert check(project, token, now=now).valid
    past_grace = now + 10 * 60 + 1
    assert check(project, before.token, now=past_grace).reason == "bad_signature"
    assert check(project, sdk_before, now=past_grace).reason == "bad_signature"
    assert check(project, after.token, now=past_grace).valid


def test_second_rotation_drops_the_oldest_secret(project, session):
    first = issue(session)
    services.tool_secret_rotate(project=project)
    second = issue(session)
    services.tool_secret_rotate(project=project)
    assert check(project, first.token).reason == "bad_signature"
    assert check(project, second.token).valid


def test_another_projects_token_is_a_bad_signature(project, session, other_project_and_key):
    other = other_project_and_key[0]
    services.call_session_create(project=other, call_id="call-1")
    issued = issue(session)
    assert check(other, issued.token).reason == "bad_signature"


def test_unknown_session(project, session, secret):
    token = SdkSessionManager(secret_key=secret).generate_token("fn", "nope")
    assert check(project, token, call_id="nope").reason == "unknown_session"


SIG = "a" * 64
GARBAGE = [
    "",
    " ",
    "not base64 at all!",
    "YWJj",  # "abc"
    b64("a.b.c.d"),  # four parts
    b64("a.b.c.d.e.f.g"),  # a call id with dots, but nothing valid after it
    b64(f"call-1.fn.notanumber.0123456789abcdef.{SIG}"),
    b64(f"call-1.fn.{10**12}.0123456789abcdef.{SIG}"),
    b64(f"call-1.f:n.1999999999.0123456789abcdef.{SIG}"),
    b64(f"call-1.fn.1999999999.nothex!!.{SIG}"),
    b64("call-1.fn.1999999999.0123456789abcdef.short"),
    b64(f".fn.1999999999.0123456789abcdef.{SIG}"),
    b64(f"call-12.fn.1999999999.0123456789abcdef.{SIG}").rstrip("="),  # padding stripped
    # standard (not url-safe) base64
    base64.b64encode(f"~~~.fn.1999999999.0123456789abcdef.{SIG}".encode()).decode(),
    "x" * 10 * 1024,  # 10 KB
    b64("x" * 7000),  # long, under the size limit, one part
    "\x00\x00",
    "é" * 10,
    "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",  # a JWT
    None,
    12345,
    ["a"],
    {"token": "x"},
]


@pytest.mark.parametrize("token", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_is_malformed(project, session, token):
    result = check(project, token)
    assert result.valid is False
    assert result.reason == "malformed"


def test_a_forged_signature_is_bad_signature(project, session):
    forged = b64(f"call-1.fn.{int(time.time()) + 60}.0123456789abcdef.{SIG}")
    assert check(project, forged).reason == "bad_signature"


def test_reencoding_a_token_does_not_escape_its_row(project):
    # One token, one spelling: a non-canonical spelling of a used-up token is refused, never
    # validated as a fresh, unregistered token (and its jti is a hash of the decoded text).
    session = services.call_session_create(project=project, call_id="~~~~")
    issued = issue(session, max_uses=1)
    assert check(project, issued.token, call_id="~~~~").valid
    text = base64.urlsafe_b64decode(issued.token)
    variants = {base64.b64encode(text).decode(), issued.token.rstrip("=")}
    assert issued.token not in variants and len(variants) == 2
    for variant in variants:
        assert check(project, variant, call_id="~~~~").reason == "malformed"
    assert check(project, issued.token, call_id="~~~~").reason == "used_up"


def test_cleanup_ends_expired_and_purges_old_sessions(project, session, settings):
    issued = issue(session)
    other = services.call_session_create(project=project, call_id="call-2")
    later = timezone.now() + timedelta(hours=25)
    assert services.call_sessions_cleanup(now=later, batch_size=1) == (2, 0)
    assert check(project, issued.token).reason == "session_ended"
    assert IssuedToken.objects.get(pk=issued.row.pk).revoke_reason == "session expired"
    # Still kept (the admin shows them) until the retention has passed.
    much_later = later + timedelta(days=7, seconds=1)
    assert services.call_sessions_cleanup(now=much_later, batch_size=1) == (0, 2)
    assert not CallSession.objects.filter(pk__in=[session.pk, other.pk]).exists()
    assert not IssuedToken.objects.filter(pk=issued.row.pk).exists()
    assert check(project, issued.token).reason == "unknown_session"


def test_cleanup_is_per_project_through_the_facade(project, sm, other_project_and_key, monkeypatch):
    other = other_project_and_key[0]
    mine = services.call_session_create(project=project, call_id="mine")
    theirs = services.call_session_create(project=other, call_id="theirs")
    CallSession.objects.filter(pk__in=[mine.pk, theirs.pk]).update(expires_at=timezone.now())
    assert sm.cleanup() == 1
    assert CallSession.objects.get(pk=theirs.pk).ended_at is None


def test_secret_made_once(project):
    first = services.tool_secret_get_or_create(project=project)
    assert services.tool_secret_get_or_create(project=project).pk == first.pk
    assert len(first.secret) == 64 and ToolSecret.objects.count() == 1


def test_cache_is_bounded(project, session):
    for i in range(20):
        tooltokens.token_state(f"jti-{i}")
    assert len(tooltokens._tokens) <= tooltokens._CACHE_MAX


def test_first_secret_is_seen_at_once(project, session):
    # A validation before the project had a secret must not make this process refuse the
    # first tokens signed with it.
    assert check(project, "YWJj").reason == "malformed"
    assert tooltokens.secret_keys(project.pk) == ()
    issued = issue(session)
    assert check(project, issued.token).valid
