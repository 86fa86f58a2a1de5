"""Roomkey's own API (`/api/v1/…`, DRF's conventions) answers every error in JSON: 404 for an
unroutable path, 405, 500 for an unexpected exception, in DEBUG and not. tokens.errors is the
one place that decides; each contract's family has tests of its own format beside its app's.
"""

import json

import pytest

from tokens import errors, services

INTROSPECT = "/api/v1/tokens/introspect"


@pytest.fixture(params=[True, False], ids=["debug", "no-debug"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


def _json(response):
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    return json.loads(response.content)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nothing-here",
        "/api/v1/tokens/introspect/extra",
        "/api/v1/tokens",
        "/api/anything/else",
    ],
)
def test_unroutable_api_path_is_a_json_404(api, debug, path):
    response = api.get(path)
    assert response.status_code == 404
    assert _json(response) == {"detail": "Not found."}


def test_unroutable_api_path_without_credentials_is_the_same_404(client, debug):
    response = client.post("/api/v1/nothing-here", {}, content_type="application/json")
    assert response.status_code == 404
    assert _json(response) == {"detail": "Not found."}


def test_wrong_method_is_a_json_405(api, debug):
    response = api.get(INTROSPECT)
    assert response.status_code == 405
    assert _json(response) == {"detail": 'Method "GET" not allowed.'}


def test_unexpected_exception_is_a_json_500(api, debug, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(services, "token_introspect", broken)
    response = api.post(INTROSPECT, {"token": "x"}, format="json")
    assert response.status_code == 500
    assert _json(response) == {"detail": "Internal server error."}
    assert "a bug" not in response.content.decode()
    assert any(r.exc_info and "a bug" in str(r.exc_info[1]) for r in caplog.records)


def test_non_api_paths_keep_django_pages(client, settings):
    settings.DEBUG = False
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_handler500_answers_api_paths_in_their_format(rf):
    response = errors.server_error(rf.get("/api/v1/tokens/introspect"))
    assert response.status_code == 500
    assert _json(response) == {"detail": "Internal server error."}


def test_handler404_answers_api_paths_in_their_format(rf):
    response = errors.page_not_found(rf.get("/api/v1/whatever"), Exception("x"))
    assert response.status_code == 404
    assert _json(response) == {"detail": "Not found."}


def test_format_for_path_takes_the_longest_prefix():
    assert errors.format_for_path("/api/v1/tokens/introspect") is errors.DRF_ERRORS
    assert errors.format_for_path("/admin/") is None
    assert errors.format_for_path("/") is None


def test_application_errors_carry_status_code_and_field():
    error = errors.BadInput("Must be a string.", field="ttl", code="invalid_parameter")
    assert (error.status, error.code, error.field, error.message) == (
        422,
        "invalid_parameter",
        "ttl",
        "Must be a string.",
    )
    assert error.described == "ttl: Must be a string."
    assert errors.NotFound().message == "Not found."
    assert errors.Conflict("x", code="session_ended").code == "session_ended"


def test_disallowed_host_on_an_api_path_is_a_json_400(client, debug):
    response = client.post(INTROSPECT, {}, HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert _json(response) == {"detail": "Bad request."}
