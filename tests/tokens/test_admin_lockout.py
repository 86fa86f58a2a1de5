"""Admin login is throttled (django-axes): after AXES_FAILURE_LIMIT failed logins for one
username, or from one address, the next attempt is refused with 429 without its password being
checked — even the right one — until staff clear the record in the admin."""

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.test import Client

LOGIN = "/admin/login/?next=/admin/"
LIMIT = 3
PASSWORD = "a-long-and-correct-password"


@pytest.fixture(autouse=True)
def _limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user(
        "ops", password=PASSWORD, is_staff=True, is_superuser=True
    )


def _login(username, password, *, address="10.0.0.1"):
    client = Client(REMOTE_ADDR=address)
    return client.post(LOGIN, {"username": username, "password": password})


def _hashed_passwords(monkeypatch) -> list:
    """Counts the password checks (the expensive part) the next logins make."""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    checked = []
    original = PBKDF2PasswordHasher.verify

    def verify(self, password, encoded):
        checked.append(password)
        return original(self, password, encoded)

    monkeypatch.setattr(PBKDF2PasswordHasher, "verify", verify)
    return checked


def test_a_username_is_locked_at_n_failures_from_any_address(staff):
    for attempt in range(LIMIT - 1):
        assert _login("ops", "wrong", address=f"10.0.0.{attempt}").status_code == 200
    assert _login("ops", PASSWORD, address="10.0.1.1").status_code == 302  # N-1 failures: fine
    for attempt in range(LIMIT):  # the success reset the count; N failures now
        assert _login("ops", "wrong", address=f"10.0.2.{attempt}").status_code in (200, 429)
    refused = _login("ops", PASSWORD, address="10.0.3.1")
    assert refused.status_code == 429


def test_an_address_is_locked_at_n_failures_whatever_the_usernames(staff):
    for name in ("a", "b"):
        assert _login(name, "wrong", address="192.0.2.7").status_code == 200
    assert _login("c", "wrong", address="192.0.2.7").status_code == 429  # the Nth failure
    assert _login("ops", PASSWORD, address="192.0.2.7").status_code == 429
    assert _login("ops", PASSWORD, address="192.0.2.8").status_code == 302  # another address


def test_locked_attempts_do_not_hash_passwords(staff, monkeypatch):
    for _ in range(LIMIT):
        _login("ops", "wrong", address="198.51.100.1")
    checked = _hashed_passwords(monkeypatch)
    for _ in range(20):
        assert _login("ops", "wrong", address="198.51.100.1").status_code == 429
    assert checked == []


def test_staff_clear_a_lockout_in_the_admin(staff, admin_client):
    for _ in range(LIMIT):
        _login("ops", "wrong", address="203.0.113.9")
    assert _login("ops", PASSWORD, address="203.0.113.9").status_code == 429
    attempts = AccessAttempt.objects.all()
    assert attempts.exists()
    page = admin_client.get("/admin/axes/accessattempt/")
    assert page.status_code == 200 and b"203.0.113.9" in page.content
    admin_client.post(
        "/admin/axes/accessattempt/",
        {
            "action": "delete_selected",
            "_selected_action": [a.pk for a in attempts],
            "post": "yes",
        },
    )
    assert not AccessAttempt.objects.exists()
    assert _login("ops", PASSWORD, address="203.0.113.9").status_code == 302
