"""Copies between different backends stream the bytes and keep etag and content type."""

import itertools
from contextlib import ExitStack

import pytest

from tests.backends import BACKENDS
from tests.conformance.helpers import random_bytes, sha256

PAIRS = [(a, b) for a, b in itertools.permutations(sorted(BACKENDS), 2) if "postgres" not in a + b]


@pytest.mark.parametrize("source_name,target_name", PAIRS)
def test_copy_between_backends(source_name, target_name, tmp_path):
    data = random_bytes(3 * 1024 * 1024 + 5, seed=9)
    with ExitStack() as stack:
        source = stack.enter_context(BACKENDS[source_name]().make(str(tmp_path / "s")))
        target = stack.enter_context(BACKENDS[target_name]().make(str(tmp_path / "t")))
        source.write_bytes("from/here.dat", data, "application/x-moved")
        copied = target.copy_data_from(source, "from/here.dat", "to/there.dat")
        assert copied.etag == sha256(data)
        item = target.read("to/there.dat")
        assert item.content_type == "application/x-moved"
        assert item.etag == source.read("from/here.dat").etag
        assert item.read_bytes() == data
