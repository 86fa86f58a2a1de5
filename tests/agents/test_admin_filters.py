"""The status filters of the admin's changelists (built on tokens.admin.StatusFilter) list the
rows in the status chosen, and every row without one."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from agents import services
from agents.models import CallSession, Room
from tokens import services as token_services
from tokens.models import ApiKey


def listed(admin_client, changelist, status=None) -> set[str]:
    response = admin_client.get(reverse(changelist), {"status": status} if status else {})
    assert response.status_code == 200
    return {str(row.pk) for row in response.context["cl"].result_list}


def api_keys(project):
    past = timezone.now() - timedelta(minutes=1)
    revoked = token_services.api_key_create(project=project, name="revoked").row
    token_services.api_key_revoke(api_key=revoked)
    expired = token_services.api_key_create(project=project, name="expired", expires_at=past)
    return {
        "usable": ApiKey.objects.get(name="first key"),
        "expired": expired.row,
        "revoked": revoked,
    }


def rooms(project):
    return {
        "open": Room.objects.create(project=project, name="open"),
        "ended": Room.objects.create(project=project, name="ended", ended_at=timezone.now()),
    }


def call_sessions(project):
    made = {
        status: services.call_session_create(project=project, call_id=status)
        for status in ("open", "expired", "ended")
    }
    CallSession.objects.filter(pk=made["expired"].pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    services.call_session_end(session=made["ended"], by="test")
    return made


@pytest.mark.parametrize(
    ("changelist", "make"),
    [
        ("admin:tokens_apikey_changelist", api_keys),
        ("admin:agents_room_changelist", rooms),
        ("admin:agents_callsession_changelist", call_sessions),
    ],
)
def test_each_status_lists_its_rows(admin_client, project, changelist, make):
    rows = {status: str(row.pk) for status, row in make(project).items()}
    assert listed(admin_client, changelist) == set(rows.values())
    for status, pk in rows.items():
        assert listed(admin_client, changelist, status) == {pk}, status
