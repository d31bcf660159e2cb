"""
The backends the conformance suite runs against. Each entry makes a store with the given
options and cleans up after itself; `debris` reports anything a write left behind that
no item accounts for (temp files, orphan chunks, multipart uploads).
"""

import os
import uuid
from contextlib import contextmanager
from typing import Callable, Dict

from persisty.impl.mem.mem_store_factory import MemStoreFactory

from persisty_data.chunk.chunk_data_store import ChunkDataStore
from persisty_data.chunk.sql_store_factory import SqlStoreFactory
from persisty_data.directory.directory_data_store import DirectoryDataStore
from tests.backend_base import CHUNK_SIZE, Backend, flip_byte
from tests.conftest import POSTGRES_URL


class DirectoryBackend(Backend):
    name = "directory"
    boundary = 256 * 1024  # the writer's buffer size

    @contextmanager
    def make(self, tmp_dir, **options):
        yield DirectoryDataStore(os.path.join(tmp_dir, f"root-{uuid.uuid4().hex[:8]}"), name="files", **options)

    def debris(self, store):
        return os.listdir(store._temp_dir)

    def corrupt(self, store, key):
        corrupt_file(store._checked_path(key))


def corrupt_file(path: str) -> None:
    """Flip the first byte in place: same inode, size and mtime, so the metadata still matches."""
    stat = os.stat(path)
    with open(path, "r+b") as file:
        first = file.read(1)
        file.seek(0)
        file.write(flip_byte(first))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


class ChunkBackend(Backend):
    def factories(self, tmp_dir):
        raise NotImplementedError()

    @contextmanager
    def make(self, tmp_dir, **options):
        options.setdefault("chunk_size", CHUNK_SIZE)
        name = f"t{uuid.uuid4().hex[:12]}"
        factory, chunk_factory = self.factories(tmp_dir)
        store = ChunkDataStore(name, factory, chunk_factory, **options)
        try:
            yield store
        finally:
            if isinstance(factory, SqlStoreFactory):
                factory.drop_tables(store.item_meta, store.chunk_meta)

    def corrupt(self, store, key):
        row = store.item_store.read(key)
        chunk_key = store._chunk_keys(row.upload_id, (0,))[0]
        chunk = store.chunk_store.read(chunk_key)
        chunk.content = flip_byte(chunk.content)
        assert store.chunk_store.update(chunk) is not None

    def debris(self, store):
        referenced = {row.upload_id for row in store.item_store.search_all()}
        return sorted({c.upload_id for c in store.chunk_store.search_all() if c.upload_id not in referenced})


class ChunkMemBackend(ChunkBackend):
    name = "chunk_mem"

    def factories(self, tmp_dir):
        return MemStoreFactory(), MemStoreFactory()


class ChunkSqliteBackend(ChunkBackend):
    name = "chunk_sqlite"

    def factories(self, tmp_dir):
        factory = SqlStoreFactory(f"sqlite:///{os.path.join(tmp_dir, 'chunks.sqlite')}")
        return factory, None


_POSTGRES_FACTORY = None


class ChunkPostgresBackend(ChunkBackend):
    name = "chunk_postgres"

    def factories(self, tmp_dir):
        global _POSTGRES_FACTORY
        if _POSTGRES_FACTORY is None:
            _POSTGRES_FACTORY = SqlStoreFactory(POSTGRES_URL)
        return _POSTGRES_FACTORY, None


BACKENDS: Dict[str, Callable[[], Backend]] = {
    "directory": DirectoryBackend,
    "chunk_mem": ChunkMemBackend,
    "chunk_sqlite": ChunkSqliteBackend,
    "chunk_postgres": ChunkPostgresBackend,
}

# S3 on moto, in-process and as a server over HTTP (tests/s3_backends.py).
from tests.s3_backends import S3_BACKENDS  # noqa: E402

BACKENDS.update(S3_BACKENDS)
