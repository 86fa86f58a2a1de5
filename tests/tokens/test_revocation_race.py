"""Revocation changes a row exactly once, however many callers race for it.

The concurrent tests need PostgreSQL's row locks and real transactions, each thread on its own
connection; the sequential ones run everywhere.
"""

import random
import threading
from datetime import timedelta

import pytest

from tests.helpers import run_together
from tokens import services
from tokens.models import IssuedToken
from tokens.signals import tokens_revoked

THREADS = 8


def _issue(project, n=1):
    return [
        services.token_issue(
            project=project, kind="chat", subject=f"member-{i}", ttl=timedelta(minutes=10)
        )
        for i in range(n)
    ]


@pytest.fixture
def announced():
    """Every (jti, project_id) the tokens_revoked signal announced, from any thread."""
    calls = []
    lock = threading.Lock()

    def receiver(sender, jtis, project_id, **kwargs):
        with lock:
            calls.extend((jti, project_id) for jti in jtis)

    tokens_revoked.connect(receiver, weak=False)
    yield calls
    tokens_revoked.disconnect(receiver)


# --- Concurrent (PostgreSQL) ----------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(3))
def test_concurrent_revokes_of_one_token_revoke_it_once(project, announced, attempt):
    (issued,) = _issue(project)
    jti = issued.row.jti

    results = run_together(
        lambda i: services.token_revoke(jti=jti, by=f"thread-{i}", reason=f"race {i}"), THREADS
    )

    assert results.count(True) == 1
    assert results.count(False) == THREADS - 1
    winner = results.index(True)
    row = IssuedToken.objects.get(pk=jti)
    # The winner's write is the one that stands: no loser overwrote it.
    assert row.revoked_by == f"thread-{winner}"
    assert row.revoke_reason == f"race {winner}"
    assert announced == [(jti, str(project.pk))]
    assert services.token_introspect(issued.token, project=project) == {"active": False}
    assert services.token_verify(issued.token).reason == "revoked"


# Callers pass querysets in their own order (the admin passes its changelist's sort), and
# tokens minted in the same second tie on the default ordering (-issued_at).
ORDERINGS = ["jti", "-jti", "-issued_at", "subject", "-subject", "?", "project", "-expires_at"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(3))
def test_concurrent_revoke_many_revokes_each_row_once(
    project, other_project_and_key, announced, attempt
):
    other = other_project_and_key[0]
    tokens = _issue(project, 12) + _issue(other, 12)
    jtis = [t.row.jti for t in tokens]
    rng = random.Random(attempt)
    # Overlapping selections, some spanning both projects, one of all.
    subsets = [rng.sample(jtis, 16) for _ in range(THREADS - 1)] + [jtis]

    results = run_together(
        lambda i: services.token_revoke_many(
            queryset=IssuedToken.objects.filter(jti__in=subsets[i]).order_by(ORDERINGS[i]),
            by=f"thread-{i}",
        ),
        THREADS,
    )

    assert sum(results) == len(jtis)
    assert IssuedToken.objects.filter(revoked_at__isnull=True).count() == 0
    assert sorted(jti for jti, _ in announced) == sorted(jtis)
    assert sorted(announced) == sorted(
        [(t.row.jti, str(project.pk)) for t in tokens[:12]]
        + [(t.row.jti, str(other.pk)) for t in tokens[12:]]
    )
    for token in tokens:
        assert services.token_verify(token.token).reason == "revoked"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_single_and_bulk_revokes(project, announced):
    tokens = _issue(project, 6)
    jtis = [t.row.jti for t in tokens]

    def work(i):
        if i % 2:
            return int(services.token_revoke(jti=jtis[i % len(jtis)]))
        return services.token_revoke_many(queryset=IssuedToken.objects.filter(project=project))

    results = run_together(work, THREADS)

    assert sum(results) == len(jtis)
    assert sorted(jti for jti, _ in announced) == sorted(jtis)


# --- Sequential (every database) ------------------------------------------------------------


def test_second_revoke_changes_nothing(project, django_capture_on_commit_callbacks, announced):
    (issued,) = _issue(project)
    jti = issued.row.jti
    with django_capture_on_commit_callbacks(execute=True):
        assert services.token_revoke(jti=jti, by="first", reason="one") is True
        first = IssuedToken.objects.get(pk=jti)
        assert services.token_revoke(jti=jti, by="second", reason="two") is False
        assert services.token_revoke_many(queryset=IssuedToken.objects.filter(pk=jti)) == 0
    row = IssuedToken.objects.get(pk=jti)
    assert (row.revoked_at, row.revoked_by, row.revoke_reason) == (
        first.revoked_at,
        "first",
        "one",
    )
    assert announced == [(jti, str(project.pk))]
    assert services.token_introspect(issued.token, project=project) == {"active": False}


def test_revoke_of_unknown_or_foreign_jti_is_false(project, other_project_and_key):
    (issued,) = _issue(project)
    other = other_project_and_key[0]
    assert services.token_revoke(jti="no-such-jti") is False
    assert services.token_revoke(jti=issued.row.jti, project=other) is False
    assert IssuedToken.objects.get(pk=issued.row.pk).revoked_at is None
    assert services.token_revoke(jti=issued.row.jti, project=project) is True


def test_sequential_revoke_many_over_overlapping_querysets(
    project, django_capture_on_commit_callbacks, announced
):
    tokens = _issue(project, 10)
    jtis = [t.row.jti for t in tokens]
    with django_capture_on_commit_callbacks(execute=True):
        counts = [
            services.token_revoke_many(queryset=IssuedToken.objects.filter(jti__in=jtis[:6])),
            services.token_revoke_many(queryset=IssuedToken.objects.filter(jti__in=jtis[3:8])),
            services.token_revoke(jti=jtis[8]),
            services.token_revoke_many(queryset=IssuedToken.objects.all()),
            services.token_revoke_many(queryset=IssuedToken.objects.all()),
        ]
    assert counts == [6, 2, True, 1, 0]
    assert sorted(jti for jti, _ in announced) == sorted(jtis)
    assert IssuedToken.objects.filter(revoked_at__isnull=True).count() == 0


@pytest.mark.parametrize("ordering", ["-issued_at", "jti", "project", "api_key__name"])
def test_revoke_many_takes_querysets_in_any_order(project, ordering):
    # The row locks must not depend on, or reach through, the caller's ordering: ordering by a
    # relation joins its table into the SELECT ... FOR UPDATE (on PostgreSQL, locking the
    # related rows too, or failing outright for a nullable relation).
    _issue(project, 3)
    queryset = IssuedToken.objects.filter(project=project).order_by(ordering)
    assert services.token_revoke_many(queryset=queryset) == 3
