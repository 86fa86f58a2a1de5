"""Every admin action that writes needs its permission: staff who may only view get a 403 and
nothing changes; staff with the permission the action names (and no other) can run it. Here the
registry's actions, and the rules every app's admin follows."""

from pathlib import Path

import pytest
from django.contrib.admin.sites import site
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied

from tests.admin_permissions import ActionPermissionTests, Case
from tests.helpers import mint_chat
from tokens.admin import GuardedActionsAdmin
from tokens.models import ApiKey, SigningKey


def first_api_key(request):
    return ApiKey.objects.get(project=request.getfixturevalue("project")).pk


def signing_key(request):
    return SigningKey.objects.get(project=request.getfixturevalue("project")).pk


def chat_token(request):
    return mint_chat(request.getfixturevalue("project")).row.jti


class TestActionPermissions(ActionPermissionTests):
    cases = [
        Case("tokens", "apikey", "revoke_keys", "change", first_api_key),
        Case("tokens", "signingkey", "rotate", "change", signing_key),
        Case("tokens", "signingkey", "retire", "change", signing_key),
        Case("tokens", "issuedtoken", "revoke_selected", "revoke", chat_token),
    ]


PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the project's apps are its top folders


def own_actions():
    """(model admin, action name, function) of every action the project's admins declare."""
    for model, model_admin in site._registry.items():
        if Path(model._meta.app_config.path).parent != PROJECT_ROOT:
            continue  # Django's and third parties' admins (auth, django-axes)
        for name in model_admin.actions or ():
            yield model_admin, name, getattr(type(model_admin), name)


def test_every_action_names_its_permission_and_is_tested():
    from tests.agents.test_admin_permissions import TestActionPermissions as Agents
    from tests.chat.test_admin_permissions import TestActionPermissions as Chat

    cases = [*TestActionPermissions.cases, *Agents.cases, *Chat.cases]
    tested = {(c.app, c.model, c.action) for c in cases}
    declared = set()
    for model_admin, name, action in own_actions():
        assert isinstance(model_admin, GuardedActionsAdmin), model_admin
        assert set(action.allowed_permissions) <= {"revoke", "change", "model_change"}, name
        assert action.allowed_permissions, name
        declared.add((model_admin.opts.app_label, model_admin.opts.model_name, name))
    assert declared == tested


@pytest.mark.django_db
def test_the_action_itself_refuses_staff_without_its_permission(rf, django_user_model):
    # Not only the changelist: called any other way, an action checks its permission again.
    viewer = django_user_model.objects.create_user("viewer", password=None, is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))

    def refuses(model_admin, action) -> bool:
        request = rf.post("/")
        request.user = viewer
        try:
            action(model_admin, request, model_admin.model.objects.none())
        except PermissionDenied:
            return True
        return False

    ran = [name for model_admin, name, action in own_actions() if not refuses(model_admin, action)]
    assert ran == []
