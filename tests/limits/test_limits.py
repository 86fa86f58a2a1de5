"""The limits in-process (any backend: the in-memory cache on SQLite, Redis when REDIS_URL is
set): rates and addresses, the failed-authentication check before any key lookup, headers,
settings and a project's own limits, the quota lock, the admin page."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.urls import reverse
from django.utils import timezone

from agents import services as agent_services
from agents.models import CallSession
from limits import counters, policy
from limits.models import LiveSocket, ProjectLimits
from limits.rates import Rate, address_bucket, parse_rate
from tests.admin_permissions import login_staff
from tests.conftest import on_postgres
from tokens import services

WRONG = "rk_000000000000_" + "w" * 43


# --- Rates and addresses ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("600/min", Rate(600, 60)),
        ("20/10s", Rate(20, 10)),
        ("5 / hour", Rate(5, 3600)),
        ("1/day", Rate(1, 86400)),
        ("3/2minutes", Rate(3, 120)),
        ("0/s", Rate(0, 1)),
    ],
)
def test_rates_are_read(text, rate):
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["600", "10/fortnight", "-1/min", "5/0s", "x/min", "1.5/min"])
def test_a_bad_rate_is_an_error(text):
    with pytest.raises(ValueError, match=r"is not a rate|longer than 0"):
        parse_rate(text)


def test_no_rate_is_no_limit():
    assert parse_rate(None) is None and parse_rate("") is None


def test_rates_read_as_people_write_them():
    assert str(Rate(600, 60)) == "600 per minute"
    assert str(Rate(20, 10)) == "20 per 10 seconds"
    assert str(Rate(3, 7200)) == "3 per 2 hours"


@pytest.mark.parametrize(
    ("address", "bucket"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        (None, "unknown"),
        ("not an address", "unknown"),
    ],
)
def test_an_ipv6_client_is_counted_by_its_64(address, bucket):
    assert address_bucket(address) == bucket


@pytest.fixture(params=["configured", "shared cache"])
def counter_backend(request, settings, tmp_path):
    """The counters of the settings (in memory, or Redis with REDIS_URL), and those of a
    cache shared by processes (here a file-based one) when there is no Redis."""
    if request.param == "shared cache":
        settings.ROOMKEY_LIMITS = {**settings.ROOMKEY_LIMITS, "REDIS_URL": ""}
        settings.REDIS_URL = ""
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                "LOCATION": str(tmp_path),
            }
        }
        assert isinstance(counters.backend(), counters.CacheCounters)
    counters.clear()
    return counters.backend()


def test_a_counter_window_starts_at_its_first_hit_and_ends_after_its_period(counter_backend):
    first = counters.hit([("t:window", 60), ("t:window", 60), ("t:other", 0)])
    assert [c.value for c in first] == [1, 2, 0]
    assert 59 < first[1].reset <= 60 and first[2].reset == 0
    counters.hit([("t:short", 0.2)])
    import time

    time.sleep(0.3)
    assert counters.hit([("t:short", 0.2)])[0].value == 1


# --- Through the API views --------------------------------------------------------------------


@pytest.fixture
def small(settings):
    settings.ROOMKEY_LIMITS = {
        **settings.ROOMKEY_LIMITS,
        "RATES": {"chat": "2/min"},
        "ADDRESS_RATES": {"chat": "50/min"},
        "FAILED_AUTH_RATE": "2/min",
    }


def test_successes_carry_ratelimit_headers(small, api):
    first, second = api.get("/api/v1/addresses"), api.get("/api/v1/addresses")
    assert (first["RateLimit-Limit"], first["RateLimit-Remaining"]) == ("2", "1")
    assert second["RateLimit-Remaining"] == "0"
    assert 0 < int(second["RateLimit-Reset"]) <= 60
    refused = api.get("/api/v1/addresses")
    assert refused.status_code == 429
    assert refused.json()["retry_after"] == int(refused["Retry-After"])


def test_over_the_failed_authentication_budget_no_key_is_looked_up(
    small, client_for, api_key, django_assert_num_queries
):
    wrong = client_for(WRONG)
    assert [wrong.get("/api/v1/addresses").status_code for _ in range(2)] == [401, 401]
    right = client_for(api_key)
    with django_assert_num_queries(0):
        refused = right.get("/api/v1/addresses")
    assert refused.status_code == 429
    assert refused["Retry-After"] == refused["RateLimit-Reset"]
    assert refused.json()["detail"].startswith("Too many failed authentications")


def test_missing_credentials_are_not_failed_authentications(small, client_for, api_key):
    anonymous = client_for()
    assert [anonymous.get("/api/v1/addresses").status_code for _ in range(3)] == [401] * 3
    assert client_for(api_key).get("/api/v1/addresses").status_code == 200


def test_with_rate_limits_off_nothing_is_counted(small, settings, api, client_for):
    settings.ROOMKEY_LIMITS = {**settings.ROOMKEY_LIMITS, "RATE_LIMITS": False}
    answers = [api.get("/api/v1/addresses") for _ in range(4)]
    assert [a.status_code for a in answers] == [200] * 4
    assert all("RateLimit-Limit" not in a for a in answers)
    assert [client_for(WRONG).get("/api/v1/addresses").status_code for _ in range(4)] == [401] * 4


def test_a_projects_own_rate_applies_as_soon_as_it_is_saved(small, api, project):
    assert api.get("/api/v1/addresses")["RateLimit-Limit"] == "2"
    limits = ProjectLimits.objects.get(project=project)
    limits.chat_rate = "10/min"
    limits.save()
    assert api.get("/api/v1/addresses")["RateLimit-Limit"] == "10"


def test_a_projects_own_rate_with_another_window_is_counted_in_it(small, api, project):
    ProjectLimits.objects.filter(project=project).update(chat_rate="3/hour")
    policy.forget(project.pk)
    answers = [api.get("/api/v1/addresses") for _ in range(3)]
    assert [a["RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
    assert 3500 < int(answers[-1]["RateLimit-Reset"]) <= 3600
    refused = api.get("/api/v1/addresses")
    assert refused.status_code == 429 and "3 per hour per API key" in refused.json()["detail"]


def test_every_project_has_its_limits_row(project, other_project_and_key):
    assert (
        ProjectLimits.objects.filter(project__in=[project, other_project_and_key[0]]).count() == 2
    )


# --- Quotas -----------------------------------------------------------------------------------


def test_the_call_session_quota_counts_open_sessions_only(project, settings):
    settings.ROOMKEY_LIMITS = {**settings.ROOMKEY_LIMITS, "MAX_CALL_SESSIONS": 2}
    first = agent_services.call_session_create(project=project)
    agent_services.call_session_create(project=project)
    with pytest.raises(Exception, match="at most 2 open call sessions"):
        agent_services.call_session_create(project=project)
    agent_services.call_session_end(session=first)
    third = agent_services.call_session_create(project=project)
    CallSession.objects.filter(pk=third.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    agent_services.call_session_create(project=project)  # an expired session holds no slot


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_creations_never_pass_the_quota():
    project, _ = services.project_create(name="Racing")
    ProjectLimits.objects.filter(project=project).update(max_call_sessions=3)
    barrier = threading.Barrier(8)
    outcomes = []

    def create():
        try:
            barrier.wait()
            agent_services.call_session_create(project=project)
            outcomes.append("created")
        except Exception as exc:
            outcomes.append(type(exc).__name__)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["QuotaExceeded"] * 5 + ["created"] * 3
    assert CallSession.objects.filter(project=project).count() == 3
    assert on_postgres() and connection.vendor == "postgresql"


def test_expired_socket_slots_hold_nothing(project):
    now = timezone.now()
    LiveSocket.objects.create(project=project, kind="chat", process="gone", lease_until=now)
    LiveSocket.objects.create(
        project=project, kind="chat", process="alive", lease_until=now + timedelta(minutes=1)
    )
    rows = policy.usage_rows("max_chat_sockets", timezone.now()).filter(project=project)
    assert list(rows.values_list("process", flat=True)) == ["alive"]


# --- Admin ------------------------------------------------------------------------------------


def test_the_admin_shows_each_projects_usage_against_its_quotas(admin_client, project, settings):
    settings.ROOMKEY_LIMITS = {**settings.ROOMKEY_LIMITS, "MAX_VOICE_SOCKETS": 7}
    ProjectLimits.objects.filter(project=project).update(max_chat_sockets=1, issue_rate="9/min")
    lease = timezone.now() + timedelta(minutes=1)
    LiveSocket.objects.create(project=project, kind="chat", process="p", lease_until=lease)
    agent_services.call_session_create(project=project)
    page = admin_client.get(reverse("admin:limits_projectlimits_changelist")).content.decode()
    assert "<strong>1 / 1</strong> (full)" in page  # chat sockets
    assert "0 / 7 (default)" in page  # voice sockets
    assert "1 / 1000 (default)" in page  # call sessions
    assert "3600 s (default)" in page
    assert "issue 9/min" in page
    change = reverse("admin:limits_projectlimits_change", args=[project.pk])
    assert "chat sockets open at once" in admin_client.get(change).content.decode()


def test_staff_change_a_projects_limits_in_the_admin(admin_client, project, api):
    change = reverse("admin:limits_projectlimits_change", args=[project.pk])
    bad = admin_client.post(change, {"issue_rate": "lots", "max_chat_sockets": "5"})
    assert bad.status_code == 200 and "is not a rate" in bad.content.decode()
    saved = admin_client.post(change, {"issue_rate": "7/min", "max_chat_sockets": "5"})
    assert saved.status_code == 302
    limits = ProjectLimits.objects.get(project=project)
    assert (limits.issue_rate, limits.max_chat_sockets) == ("7/min", 5)
    assert policy.key_rate("issue", project.pk) == Rate(7, 60)
    assert policy.quota("max_chat_sockets", project.pk) == 5
    assert admin_client.get(reverse("admin:limits_projectlimits_add")).status_code == 403


def test_view_only_staff_cannot_change_limits(client, project):
    login_staff(client, "limits.view_projectlimits")
    change = reverse("admin:limits_projectlimits_change", args=[project.pk])
    assert client.get(change).status_code == 200
    client.post(change, {"issue_rate": "1/min"})
    assert ProjectLimits.objects.get(project=project).issue_rate == ""


# --- Settings ---------------------------------------------------------------------------------


def test_limits_come_from_the_environment():
    from tests.test_settings import manage

    result = manage(
        "shell",
        "-c",
        "from limits import policy as p;"
        "print(p.key_rate('issue'), '|', p.key_rate('chat'), '|', p.address_rate('issue'), '|',"
        " p.failed_auth_rate(), '|', p.connect_rate(), '|', p.frame_rate('chat'), '|',"
        " p.frame_rate('voice'), '|', p.quota('max_chat_sockets'), '|',"
        " p.quota('max_call_sessions'), '|', p.rate_limits_on())",
        ROOMKEY_RATES="issue=10/min",
        ROOMKEY_ADDRESS_RATES="issue=20/10s",
        ROOMKEY_FAILED_AUTH_RATE="5/hour",
        ROOMKEY_CONNECT_RATE="7/min",
        ROOMKEY_RELAY_REQUEST_RATE="8/s",
        ROOMKEY_VOICE_FRAME_RATE="9/s",
        ROOMKEY_MAX_CHAT_SOCKETS="11",
        ROOMKEY_MAX_CALL_SESSIONS="",
        ROOMKEY_RATE_LIMITS="false",
    )
    assert result.returncode == 0, result.stderr
    assert [part.strip() for part in result.stdout.splitlines()[-1].split("|")] == [
        "10 per minute",
        "3000 per minute",  # the default of a scope the variable leaves out
        "20 per 10 seconds",
        "5 per hour",
        "7 per minute",
        "8 per second",
        "9 per second",
        "11",
        "None",  # empty: no quota
        "False",
    ]


def test_settings_changes_apply_at_once(settings):
    settings.ROOMKEY_LIMITS = {**settings.ROOMKEY_LIMITS, "RATES": {"revoke": "1/s"}}
    assert policy.key_rate("revoke") == Rate(1, 1)
    assert policy.key_rate("issue") == Rate(3000, 60)
    settings.ROOMKEY_LIMITS = {}
    assert policy.quota("max_voice_session_seconds") == 3600


# --- The event loop's Redis replies (limits.resp) ---------------------------------------------


@pytest.mark.parametrize(
    ("data", "reply", "used"),
    [
        (b"+OK\r\n", "OK", 5),
        (b":42\r\n", 42, 5),
        (b"*4\r\n:1\r\n:60000\r\n:0\r\n:0\r\n", [1, 60000, 0, 0], 24),
        (b"*2\r\n:1\r\n:6", None, 0),  # a reply still arriving
        (b"*2\r\n:1\r", None, 0),
        (b"+O", None, 0),
        (b":7\r\n+OK\r\n", 7, 4),  # what follows is the next reply's
    ],
)
def test_replies_are_read_whole_or_not_at_all(data, reply, used):
    from limits.resp import _parse

    assert _parse(bytearray(data)) == (reply, used)


@pytest.mark.parametrize(
    "data", [b"-NOSCRIPT No matching script\r\n", b"$3\r\nabc\r\n", b"*1\r\n$1\r\n"]
)
def test_an_error_or_an_unexpected_reply_is_an_error(data):
    from limits.resp import RedisReplyError, _parse

    with pytest.raises(RedisReplyError):
        _parse(bytearray(data))
