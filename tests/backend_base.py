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

    def corrupt(self, store: DataStoreABC, key: str) -> None:
        """
        Flip one byte of key's stored content behind the store's back, leaving its
        metadata (size, etag, timestamps) as it was: what damage at rest looks like.
        """
        raise NotImplementedError()


def flip_byte(data: bytes, offset: int = 0) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]
