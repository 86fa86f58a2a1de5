"""max_uses under concurrency: N validations of a token at once never count more than
max_uses. Needs PostgreSQL (real row locks, one connection per thread)."""

import pytest

from agents import services, tooltokens
from agents.models import ToolToken
from tests.helpers import run_together
from tokens.models import IssuedToken

THREADS = 8


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("max_uses", "attempt"), [(1, 0), (1, 1), (1, 2), (3, 0)])
def test_concurrent_validations_never_exceed_max_uses(project, max_uses, attempt):
    session = services.call_session_create(project=project, call_id=f"race-{attempt}")
    issued = services.tool_token_issue(session=session, function="fn", max_uses=max_uses)
    tooltokens.forget_all()

    results = run_together(
        lambda i: services.tool_token_validate(
            project=project, call_id=session.call_id, function="fn", token=issued.token
        ),
        THREADS,
    )

    assert sum(r.valid for r in results) == max_uses
    assert {r.reason for r in results if not r.valid} == {"used_up"}
    assert ToolToken.objects.get(pk=issued.row.pk).uses == max_uses
    assert IssuedToken.objects.get(pk=issued.row.pk).revoke_reason == "used up"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_end_session_racing_issue_leaves_no_live_token(project):
    # Issue takes the session row lock; an end that races it either refuses the issue or
    # revokes the token it made, never neither.
    session = services.call_session_create(project=project, call_id="race-end")

    def work(i):
        if i == 0:
            return services.call_session_end(session=session, by="race")
        try:
            return services.tool_token_issue(session=session, function="fn").token
        except services.SessionEnded:
            return None

    tokens = [t for t in run_together(work, THREADS)[1:] if t]
    assert IssuedToken.objects.filter(kind="tool", revoked_at__isnull=True).count() == 0
    for token in tokens:
        check = services.tool_token_validate(
            project=project, call_id="race-end", function="fn", token=token
        )
        assert check.reason in ("session_ended", "revoked")
