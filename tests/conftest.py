"""Shared fixtures. Tests use the real database (SQLite or PostgreSQL, per DATABASE_URL), the
real HTTP stack (`live_server`) and, when REDIS_URL is set, the real Redis."""

import base64

import pytest
from rest_framework.test import APIClient

from limits import services as limits_services
from tokens import services


@pytest.fixture(autouse=True)
def _fresh_key_cache():
    # Signing keys are cached per process; each test starts from the database.
    services.signing_keys_forget()
    yield
    services.signing_keys_forget()


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    # Every in-process request comes from 127.0.0.1: each test starts with fresh counters.
    limits_services.reset()
    yield


@pytest.fixture
def project_and_key(db):
    """(Project, raw API key) of a fresh project with a signing key."""
    project, key = services.project_create(name="Acme")
    return project, key.raw


@pytest.fixture
def project(project_and_key):
    return project_and_key[0]


@pytest.fixture
def api_key(project_and_key):
    return project_and_key[1]


@pytest.fixture
def other_project_and_key(db):
    project, key = services.project_create(name="Other")
    return project, key.raw


def basic(project_id, key) -> str:
    return "Basic " + base64.b64encode(f"{project_id}:{key}".encode()).decode()


@pytest.fixture
def client_for():
    """client_for(key) -> APIClient sending `Authorization: Bearer <key>`."""

    def make(key=None, *, project_id=None):
        client = APIClient()
        if key is not None and project_id is not None:
            client.credentials(HTTP_AUTHORIZATION=basic(project_id, key))
        elif key is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        return client

    return make


@pytest.fixture
def api(client_for, api_key):
    return client_for(api_key)


def on_postgres() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"


def pytest_collection_modifyitems(config, items):
    """Tests marked `postgres` need PostgreSQL's row locks; on SQLite they are skipped."""
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


# Issue 4: the served relay (uvicorn on its own database) shared by the chat end-to-end tests.
from tests.chat_served import chat_server  # noqa: E402, F401
