import pytest

from tests.limits.served import serve_limited


@pytest.fixture(scope="package")
def limited(tmp_path_factory):
    yield from serve_limited(tmp_path_factory)
