from contextlib import ExitStack

import pytest

from tests.backends import BACKENDS


@pytest.fixture(params=sorted(BACKENDS))
def backend(request):
    return BACKENDS[request.param]()


@pytest.fixture
def make_store(backend, tmp_path):
    """make_store(**options) -> a fresh store of the backend under test."""
    with ExitStack() as stack:

        def make(**options):
            return stack.enter_context(backend.make(str(tmp_path), **options))

        yield make


@pytest.fixture
def store(make_store):
    return make_store()
