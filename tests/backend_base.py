"""The shape of a backend the conformance suite runs against (see tests/backends.py)."""

from contextlib import contextmanager
from typing import Iterator, List

from persisty_data.data_store_abc import DataStoreABC

CHUNK_SIZE = 1024


class Backend:
    """How to make one kind of store for the suite."""

    name: str = ""
    boundary: int = CHUNK_SIZE  # chunk / part size worth testing around

    @contextmanager
    def make(self, tmp_dir: str, **options) -> Iterator[DataStoreABC]:
        raise NotImplementedError()

    def debris(self, store: DataStoreABC) -> List[str]:
        return []
