"""API-key authentication through real requests to an endpoint that needs it.

Every way a key can be wrong must look the same from outside: same status, same body, same
challenge, so that a caller cannot probe which projects exist or which keys were revoked.
"""

import base64
import hashlib
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests.conftest import basic
from tokens import crypto, services
from tokens.models import ApiKey

URL = "/api/v1/tokens/introspect"
BODY = {"token": "not-a-token"}


def _post(client, authorization=None):
    if authorization is not None:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    return client.post(URL, BODY, format="json")


@pytest.fixture
def anon():
    """A client without credentials; each test sets the Authorization header it means."""
    return APIClient()


@pytest.fixture
def key_row(project, api_key):
    return ApiKey.objects.get(project=project, prefix=crypto.api_key_prefix(api_key))


# --- Accepted -------------------------------------------------------------------------------


def test_bearer_key_is_accepted(anon, api_key):
    response = _post(anon, f"Bearer {api_key}")
    assert response.status_code == 200
    assert response.json() == {"active": False}


@pytest.mark.parametrize(
    "transform", [str, str.upper, lambda s: f"  {s} "], ids=["as-is", "upper", "spaces"]
)
def test_basic_project_id_and_key_is_accepted(anon, project, api_key, transform):
    response = _post(anon, basic(transform(str(project.pk)), api_key))
    assert response.status_code == 200
    assert response.json() == {"active": False}


def test_scheme_is_case_insensitive(anon, api_key):
    assert _post(anon, f"bearer {api_key}").status_code == 200


# --- Refused, indistinguishably -------------------------------------------------------------


def _unknown_key():
    return crypto.new_api_key()[1]


def _wrong_secret(raw):
    # Same public prefix, so the row is found and only the digest comparison fails.
    last = "A" if raw[-1] != "A" else "B"
    return raw[:-1] + last


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# Each case: (project, raw key, other project, other key) -> Authorization header value.
REFUSED = {
    "basic-other-project-id": lambda p, k, op, ok: basic(op.pk, k),
    "basic-other-projects-key": lambda p, k, op, ok: basic(p.pk, ok),
    "basic-unknown-project-id": lambda p, k, op, ok: basic(uuid.uuid4(), k),
    "basic-garbage-project-id": lambda p, k, op, ok: basic("garbage", k),
    "basic-empty-project-id": lambda p, k, op, ok: basic("", k),
    "basic-wrong-key": lambda p, k, op, ok: basic(p.pk, _wrong_secret(k)),
    "basic-unknown-key": lambda p, k, op, ok: basic(p.pk, _unknown_key()),
    "basic-empty-key": lambda p, k, op, ok: basic(p.pk, ""),
    "basic-no-colon": lambda p, k, op, ok: "Basic " + _b64(k),
    "basic-malformed-base64": lambda p, k, op, ok: "Basic !!!not*base64",
    "basic-base64-not-utf8": lambda p, k, op, ok: (
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()
    ),
    "basic-no-credentials": lambda p, k, op, ok: "Basic",
    "basic-too-many-parts": lambda p, k, op, ok: basic(p.pk, k) + " extra",
    "bearer-wrong-key": lambda p, k, op, ok: f"Bearer {_wrong_secret(k)}",
    "bearer-unknown-key": lambda p, k, op, ok: f"Bearer {_unknown_key()}",
    "bearer-garbage": lambda p, k, op, ok: "Bearer garbage",
    "bearer-truncated-key": lambda p, k, op, ok: f"Bearer {k[:-1]}",
    "bearer-uppercased-key": lambda p, k, op, ok: f"Bearer {k.upper()}",
    "bearer-no-key": lambda p, k, op, ok: "Bearer",
    "bearer-too-many-parts": lambda p, k, op, ok: f"Bearer {k} {k}",
}


@pytest.fixture
def refused_reference(client_for, db):
    """The answer to a well-formed key that does not exist: every refusal must equal it."""
    response = client_for(_unknown_key()).post(URL, BODY, format="json")
    assert response.status_code == 401
    return response


def _assert_same_refusal(response, reference):
    assert response.status_code == 401
    assert response.content == reference.content
    assert response["WWW-Authenticate"] == reference["WWW-Authenticate"]
    assert response.get("Content-Type") == reference.get("Content-Type")


@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED.keys())
def test_bad_credentials_are_refused_identically(
    anon, project_and_key, other_project_and_key, refused_reference, case
):
    project, key = project_and_key
    other, other_key = other_project_and_key
    response = _post(anon, case(project, key, other, other_key))
    _assert_same_refusal(response, refused_reference)


def test_expired_key_is_refused_identically(anon, project, refused_reference):
    new = services.api_key_create(project=project, expires_at=timezone.now() - timedelta(seconds=1))
    for authorization in (f"Bearer {new.raw}", basic(project.pk, new.raw)):
        _assert_same_refusal(_post(anon, authorization), refused_reference)


def test_revoked_key_is_refused_identically(anon, project, refused_reference):
    new = services.api_key_create(project=project)
    assert _post(anon, f"Bearer {new.raw}").status_code == 200
    assert services.api_key_revoke(api_key=new.row) is True
    for authorization in (f"Bearer {new.raw}", basic(project.pk, new.raw)):
        _assert_same_refusal(_post(anon, authorization), refused_reference)


def test_key_with_future_expiry_is_accepted(anon, project):
    new = services.api_key_create(project=project, expires_at=timezone.now() + timedelta(hours=1))
    assert _post(anon, f"Bearer {new.raw}").status_code == 200


def test_missing_authorization_is_refused(anon, db):
    response = _post(anon)
    assert response.status_code == 401
    assert "WWW-Authenticate" in response


def test_other_scheme_is_not_authentication(anon, api_key):
    response = _post(anon, f"Token {api_key}")
    assert response.status_code == 401


# --- last_used_at ---------------------------------------------------------------------------


def test_last_used_at_written_on_first_use(anon, api_key, key_row):
    assert key_row.last_used_at is None
    before = timezone.now()
    assert _post(anon, f"Bearer {api_key}").status_code == 200
    key_row.refresh_from_db()
    assert key_row.last_used_at is not None
    assert before <= key_row.last_used_at <= timezone.now()


def test_last_used_at_not_rewritten_within_a_minute(anon, api_key, key_row):
    recent = timezone.now() - timedelta(seconds=30)
    ApiKey.objects.filter(pk=key_row.pk).update(last_used_at=recent)
    assert _post(anon, f"Bearer {api_key}").status_code == 200
    key_row.refresh_from_db()
    assert key_row.last_used_at == recent


def test_last_used_at_rewritten_after_a_minute(anon, project, api_key, key_row):
    old = timezone.now() - timedelta(seconds=120)
    ApiKey.objects.filter(pk=key_row.pk).update(last_used_at=old)
    assert _post(anon, basic(project.pk, api_key)).status_code == 200
    key_row.refresh_from_db()
    assert key_row.last_used_at > old + timedelta(seconds=100)


def test_touch_interval_is_read_from_settings(anon, api_key, key_row, settings):
    settings.ROOMKEY = {**settings.ROOMKEY, "API_KEY_TOUCH_SECONDS": 10}
    recent = timezone.now() - timedelta(seconds=30)
    ApiKey.objects.filter(pk=key_row.pk).update(last_used_at=recent)
    assert _post(anon, f"Bearer {api_key}").status_code == 200
    key_row.refresh_from_db()
    assert key_row.last_used_at > recent


@pytest.mark.parametrize("case", ["basic-other-project-id", "basic-garbage-project-id"], ids=str)
def test_refused_request_does_not_touch_the_key(
    anon, project_and_key, other_project_and_key, key_row, case
):
    # The right key under the wrong project is a failure, and a failure must leave no trace.
    project, key = project_and_key
    other, other_key = other_project_and_key
    assert _post(anon, REFUSED[case](project, key, other, other_key)).status_code == 401
    key_row.refresh_from_db()
    assert key_row.last_used_at is None


# --- Storage --------------------------------------------------------------------------------


def test_raw_key_is_never_stored(project, api_key, key_row):
    extra = services.api_key_create(project=project, name="second")
    raws = {api_key, extra.raw}
    rows = list(ApiKey.objects.values())
    assert len(rows) == 2
    for row in rows:
        for field, value in row.items():
            for raw in raws:
                assert raw not in str(value), f"raw key found in ApiKey.{field}"
                # Not even the secret part (after the public prefix).
                assert raw.split("_", 2)[2] not in str(value), f"secret part in ApiKey.{field}"
    key_row.refresh_from_db()
    assert key_row.prefix == api_key[3:15]
    assert key_row.digest == hashlib.sha256(api_key.encode()).hexdigest()
    assert (
        ApiKey.objects.get(pk=extra.row.pk).digest == hashlib.sha256(extra.raw.encode()).hexdigest()
    )
