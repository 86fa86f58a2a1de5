"""Roomkey served the way `make run` serves it: migrate, seed_demo, uvicorn on the ASGI app.

The server is a separate process with its own SQLite file, so this checks the real entry points
(manage.py, config.asgi, static files for the admin) rather than the test client.
"""

import json

import httpx
import jwt
import pytest
from signalwire.rest import RestClient

from tests.servers import demo_server


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with demo_server(tmp_path_factory, "served") as (base, port, demo, _env):
        yield base, port, demo


def test_landing_page_and_admin_are_served(served):
    base, _, demo = served
    landing = httpx.get(base + "/")
    assert landing.status_code == 200
    assert demo["project_id"] in landing.text  # the curl examples name the demo project
    login = httpx.get(base + "/admin/login/")
    assert login.status_code == 200
    css = httpx.get(base + "/static/admin/css/base.css")
    assert css.status_code == 200 and "body" in css.text


def test_signalwire_sdk_mints_from_the_served_app(served):
    _, port, demo = served
    client = RestClient(project=demo["project_id"], token=demo["api_key"], host=f"127.0.0.1:{port}")
    result = client.chat.create_token(ttl=5, channels=["general"], member_id="e2e")
    header = jwt.get_unverified_header(result["token"])
    assert header["typ"] == "VRT" and header["alg"] == "HS512"
    assert header["ch"] == f"ws://127.0.0.1:{port}/api/relay/ws"
    claims = jwt.decode(result["token"], options={"verify_signature": False})
    assert claims["sub"] == "e2e" and claims["iss"] == demo["project_id"]


def test_admin_login_with_the_printed_credentials(served):
    base, _, demo = served
    with httpx.Client(base_url=base) as browser:
        page = browser.get("/admin/login/")
        csrf = browser.cookies["csrftoken"]
        assert "csrfmiddlewaretoken" in page.text
        response = browser.post(
            "/admin/login/?next=/admin/",
            data={
                "username": demo["admin_username"],
                "password": demo["admin_password"],
                "csrfmiddlewaretoken": csrf,
                "next": "/admin/",
            },
            headers={"Referer": base + "/admin/login/"},
        )
        assert response.status_code == 302 and response.headers["location"] == "/admin/"
        assert "Issued tokens" in browser.get("/admin/").text


def test_oversize_body_is_refused_before_it_is_read(served):
    # Declared too large: refused from the headers alone, unauthenticated, in seed 000's format.
    base, _, _ = served
    big = b"x" * (1024 * 1024 + 1)
    response = httpx.post(
        base + "/api/chat/tokens", content=big, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["code"] == "body_too_large" and error["attribute"] is None
    other = httpx.post(base + "/api/v1/tokens/introspect", content=big)
    assert other.status_code == 413 and "detail" in other.json()


def _chunks(data: bytes, size: int = 1000):
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_chunked_bodies_are_read_and_bounded(served):
    base, _, demo = served
    auth = {"Authorization": f"Bearer {demo['api_key']}", "Content-Type": "application/json"}
    body = json.dumps({"ttl": 5, "channels": ["general"], "member_id": "chunked"}).encode()
    ok = httpx.post(base + "/api/chat/tokens", content=_chunks(body), headers=auth)
    assert ok.status_code == 200, ok.text
    assert jwt.decode(ok.json()["token"], options={"verify_signature": False})["sub"] == "chunked"
    huge = b"[" * (1024 * 1024 + 1)
    refused = httpx.post(base + "/api/chat/tokens", content=_chunks(huge, 64 * 1024), headers=auth)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["code"] == "body_too_large"


def test_forwarded_headers_are_not_trusted(served):
    # `make run` trusts no proxy: a client cannot choose its recorded address or the ws scheme.
    _, port, demo = served
    response = httpx.post(
        f"http://127.0.0.1:{port}/api/chat/tokens",
        json={"ttl": 5, "channels": ["general"]},
        headers={
            "Authorization": f"Bearer {demo['api_key']}",
            "X-Forwarded-For": "not-an-ip",
            "X-Forwarded-Proto": "https",
        },
    )
    assert response.status_code == 200, response.text
    assert jwt.get_unverified_header(response.json()["token"])["ch"].startswith("ws://")
