"""The tests of tests/<app>/test_admin_permissions.py, written once: each module subclasses
`ActionPermissionTests` with its admin's actions that write, as `Case`s."""

from collections.abc import Callable
from dataclasses import dataclass

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

REVOKE = "tokens.revoke_issuedtoken"


@dataclass(frozen=True)
class Case:
    """An admin action that writes, and what it needs: "revoke" (the registry's revoke
    permission) or "change" (the model's change permission). `make(request)` builds a row to
    select, from the test's fixtures, and returns its primary key."""

    app: str
    model: str
    action: str
    needs: str
    make: Callable

    def __str__(self):
        return f"{self.model}.{self.action}"

    @property
    def view(self) -> str:
        return f"{self.app}.view_{self.model}"

    @property
    def change(self) -> str:
        return f"{self.app}.change_{self.model}"

    @property
    def needed(self) -> str:
        return REVOKE if self.needs == "revoke" else self.change

    @property
    def other(self) -> str:
        """The permission of the other kind, which does not let the action run."""
        return self.change if self.needs == "revoke" else REVOKE

    @property
    def changelist(self) -> str:
        return reverse(f"admin:{self.app}_{self.model}_changelist")


def login_staff(client, *permissions, username="viewer"):
    """The test client, logged in as a staff user holding only `permissions` ("app.codename")."""
    user = get_user_model().objects.create_user(username, password=None, is_staff=True)
    for permission in permissions:
        app_label, codename = permission.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    client.force_login(user)
    return client


def snapshot() -> dict:
    """Every row of the project's own models (not Django's: sessions change as staff log in)."""
    return {
        model._meta.label: list(model.objects.order_by("pk").values())
        for model in apps.get_models()
        if not model._meta.app_config.name.startswith("django.")
    }


def offered(client, case) -> bool:
    page = client.get(case.changelist)
    assert page.status_code == 200
    return f'value="{case.action}"' in page.content.decode()


def assert_refused(client, case, pk) -> None:
    """The action is not offered, and posting it anyway (from either of Django's two action
    paths: with the button's index, or as a confirmation) answers 403 and changes nothing."""
    assert not offered(client, case)
    before = snapshot()
    for extra in ({}, {"index": "0"}):
        data = {"action": case.action, "_selected_action": [pk], **extra}
        assert client.post(case.changelist, data).status_code == 403
    assert snapshot() == before


def assert_runs(client, case, pk) -> None:
    assert offered(client, case)
    before = snapshot()
    response = client.post(case.changelist, {"action": case.action, "_selected_action": [pk]})
    assert response.status_code == 302
    assert snapshot() != before


class ActionPermissionTests:
    """Staff who may only view are refused, and so are staff with the permission of the other
    kind; staff with the permission the action names (and no other) run it. Each test runs once
    for each of `cases`."""

    cases: list[Case] = []

    def pytest_generate_tests(self, metafunc):
        metafunc.parametrize("case", self.cases, ids=str)

    def test_view_only_staff_are_refused(self, request, db, client, case):
        pk = case.make(request)
        assert_refused(login_staff(client, case.view), case, pk)

    def test_the_other_permission_is_not_enough(self, request, db, client, case):
        pk = case.make(request)
        assert_refused(login_staff(client, case.view, case.other), case, pk)

    def test_staff_with_the_permission_run_it(self, request, db, client, case):
        pk = case.make(request)
        assert_runs(login_staff(client, case.view, case.needed), case, pk)
