"""The demo page's server side: development only, a chat token minted for the demo project
server-side (the browser never holds an API key), CSRF-protected, input checked."""

import jwt
import pytest
from django.test import Client

from tokens import services
from tokens.models import IssuedToken
from tokens.selectors import DEMO_PROJECT_NAME


@pytest.fixture
def demo_project(db):
    project, _ = services.project_create(name=DEMO_PROJECT_NAME)
    return project


@pytest.mark.django_db
def test_page_and_token(demo_project, settings):
    settings.DEBUG = True
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/demo/chat")
    assert page.status_code == 200
    assert b'id="demo-channel"' in page.content and b"api/relay/ws" in page.content
    csrf = browser.cookies["csrftoken"].value
    minted = browser.post("/demo/chat/token", {"member_id": "alice"}, HTTP_X_CSRFTOKEN=csrf)
    assert minted.status_code == 200
    body = minted.json()
    assert body["channel"] == "general" and body["member_id"] == "alice"
    assert set(body) == {"token", "channel", "member_id"}  # no API key, no secret
    header = jwt.get_unverified_header(body["token"])
    assert header["ch"] == "ws://testserver/api/relay/ws"
    row = IssuedToken.objects.get(kind="chat", subject="alice")
    assert row.project == demo_project
    assert row.grants["channels"] == {"general": {"read": True, "write": True}}


@pytest.mark.django_db
def test_token_needs_csrf_and_post(demo_project, settings):
    settings.DEBUG = True
    browser = Client(enforce_csrf_checks=True)
    assert browser.post("/demo/chat/token", {"member_id": "alice"}).status_code == 403
    assert browser.get("/demo/chat/token").status_code == 405
    assert not IssuedToken.objects.exists()


@pytest.mark.django_db
def test_member_id_is_checked(demo_project, settings):
    settings.DEBUG = True
    browser = Client()
    assert browser.post("/demo/chat/token", {"member_id": "x" * 250}).status_code == 200
    for bad in ["", "x" * 251, "a\u202eb"]:
        response = browser.post("/demo/chat/token", {"member_id": bad})
        assert response.status_code == 400, bad
        assert "member_id" in response.json()["errors"]
    assert IssuedToken.objects.count() == 1


@pytest.mark.django_db
def test_not_served_without_debug_or_demo_project(settings, db):
    settings.DEBUG = True
    assert Client().get("/demo/chat").status_code == 404  # no demo project yet
    services.project_create(name=DEMO_PROJECT_NAME)
    assert Client().get("/demo/chat").status_code == 200
    settings.DEBUG = False
    assert Client().get("/demo/chat").status_code == 404
    assert Client().post("/demo/chat/token", {"member_id": "a"}).status_code == 404
    assert not IssuedToken.objects.exists()


@pytest.mark.django_db
def test_landing_page_links_the_demo(settings, db):
    settings.DEBUG = True
    assert b"/demo/chat" not in Client().get("/").content
    services.project_create(name=DEMO_PROJECT_NAME)
    assert b'href="/demo/chat"' in Client().get("/").content
    settings.DEBUG = False  # the page is a 404 then: no link to it
    assert b"/demo/chat" not in Client().get("/").content
