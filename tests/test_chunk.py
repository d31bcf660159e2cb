"""ChunkDataStore specifics: chunk traffic, orphans, internal metas, storage errors."""

import dataclasses
import gc
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import uuid
import warnings
from contextlib import closing
from datetime import timedelta

import pytest
from persisty.impl.mem.mem_store_factory import MemStoreFactory
from persisty.impl.sqlalchemy.sqlalchemy_table_store import SqlalchemyTableStore
from persisty.security.store_security import INTERNAL_ONLY

from persisty_data.chunk.chunk_data_store import ChunkDataStore
from persisty_data.chunk.sql_store_factory import SqlStoreFactory
from persisty_data.errors import ConfigurationError, ContentChangedError, StorageUnavailableError
from tests.conformance.helpers import random_bytes, sha256
from tests.conftest import POSTGRES_URL

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHUNK = 1024


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'chunks.sqlite'}"


@pytest.fixture
def store(sqlite_url):
    return ChunkDataStore("files", SqlStoreFactory(sqlite_url), chunk_size=CHUNK)


def _record_chunk_reads(store):
    requested = []
    chunk_store = store.chunk_store
    original = chunk_store.read_batch

    def read_batch(keys):
        requested.extend(keys)
        return original(keys)

    object.__setattr__(chunk_store, "read_batch", read_batch)  # instrumentation on the real store
    return requested


class TestChunkTraffic:
    def test_chunks_have_the_configured_size(self, store):
        data = random_bytes(CHUNK * 3 + 5)
        item = store.write_bytes("k", data)
        chunks = sorted(store.chunk_store.search_all(), key=lambda c: c.part_number)
        assert [len(c.content) for c in chunks] == [CHUNK, CHUNK, CHUNK, 5]
        assert {c.upload_id for c in chunks} == {item.upload_id}
        assert b"".join(c.content for c in chunks) == data

    def test_range_reads_fetch_only_covering_chunks(self, store):
        data = random_bytes(CHUNK * 10)
        store.write_bytes("k", data)
        item = store.read("k")
        requested = _record_chunk_reads(store)
        assert item.read_bytes(CHUNK * 4 + 10, 20) == data[CHUNK * 4 + 10 : CHUNK * 4 + 30]
        assert len(requested) == 1
        requested.clear()
        assert item.read_bytes(CHUNK * 5 - 1, 2) == data[CHUNK * 5 - 1 : CHUNK * 5 + 1]
        assert len(requested) == 2
        requested.clear()
        assert item.read_bytes(CHUNK * 9, CHUNK * 5) == data[CHUNK * 9 :]
        assert len(requested) == 1
        requested.clear()
        assert item.read_bytes(CHUNK * 10, 5) == b""
        assert requested == []

    def test_zero_bytes_has_no_chunks(self, store):
        store.write_bytes("empty", b"")
        assert store.chunk_store.count() == 0
        assert store.read("empty").read_bytes() == b""


class TestNoOrphans:
    def test_overwrite_and_delete_leave_no_old_chunks(self, store):
        first = store.write_bytes("k", random_bytes(CHUNK * 4))
        second = store.write_bytes("k", random_bytes(CHUNK * 2 + 1, seed=1))
        uploads = {c.upload_id for c in store.chunk_store.search_all()}
        assert uploads == {second.upload_id} and first.upload_id not in uploads
        assert store.chunk_store.count() == 3
        assert store.delete("k")
        assert store.chunk_store.count() == 0
        assert store.item_store.count() == 0

    def test_concurrent_writers_leave_exactly_the_winner(self, store):
        contents = [random_bytes(CHUNK * (2 + i), seed=i) for i in range(4)]
        barrier = threading.Barrier(4)
        errors = []

        def write(index):
            try:
                barrier.wait()
                for _ in range(3):
                    store.write_bytes("shared", contents[index])
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        item = store.read("shared")
        data = item.read_bytes()
        assert data in contents and sha256(data) == item.etag
        chunks = list(store.chunk_store.search_all())
        assert {c.upload_id for c in chunks} == {item.upload_id}
        assert len(chunks) == -(-len(data) // CHUNK)

    def test_orphans_of_a_crashed_process_are_collected(self, store, sqlite_url):
        store.write_bytes("k", b"kept")
        code = f"""
            import os
            os.environ["SQL_ECHO"] = "0"
            os.environ["PERSISTY_SECRET_KEY"] = "0123456789abcdef0123456789abcdef"
            from persisty_data.chunk.chunk_data_store import ChunkDataStore
            from persisty_data.chunk.sql_store_factory import SqlStoreFactory
            store = ChunkDataStore("files", SqlStoreFactory({sqlite_url!r}), chunk_size={CHUNK})
            writer = store.get_data_writer("k")
            writer.write(b"x" * {CHUNK * 200})
            writer._flush()
            os._exit(5)
        """
        env = dict(os.environ, PYTHONPATH=REPO)
        result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, timeout=60)
        assert result.returncode == 5, result.stderr
        assert store.chunk_store.count() > 1
        assert store.read("k").read_bytes() == b"kept"
        assert store.remove_orphan_chunks(older_than=timedelta(hours=1)) == 0  # too recent
        assert store.remove_orphan_chunks(older_than=timedelta(0)) == 1
        assert store.chunk_store.count() == 1
        assert store.read("k").read_bytes() == b"kept"


class TestInternals:
    def test_internal_metas_generate_no_actions(self, store):
        for meta in (store.item_meta, store.chunk_meta):
            assert meta.store_security is INTERNAL_ONLY
            assert list(meta.action_factory.create_actions(meta)) == []

    def test_single_caching_factory_is_refused_with_a_clear_error(self):
        with pytest.raises(ConfigurationError, match="chunk_store_factory"):
            ChunkDataStore("mem", MemStoreFactory())

    def test_chunk_size_must_be_sane(self):
        with pytest.raises(ConfigurationError):
            ChunkDataStore("bad", MemStoreFactory(), MemStoreFactory(), chunk_size=10)

    def test_default_mem_factories_work_without_a_servey_app(self):
        store = ChunkDataStore("mem", MemStoreFactory(), MemStoreFactory())
        store.write_bytes("a", b"1")
        store.write_bytes("a", b"2")
        assert store.delete("a")

    def test_stale_reader_after_delete(self, store):
        item = store.write_bytes("k", random_bytes(CHUNK * 200))  # several read batches
        reader = item.get_data_reader()
        assert len(reader.read(10)) == 10
        store.delete("k")
        with pytest.raises(ContentChangedError):
            reader.read()


class TestStatementsEnd:
    """Reads that stop part way leave no SQLite statement active on a pooled connection."""

    @pytest.fixture
    def no_gc(self):
        # The garbage collector would close the abandoned cursors at an unknown moment.
        gc.disable()
        try:
            yield
        finally:
            gc.enable()

    def test_tables_can_be_dropped_after_a_partial_search(self, sqlite_url, no_gc):
        factory = SqlStoreFactory(sqlite_url)
        store = ChunkDataStore("files", factory, chunk_size=CHUNK)
        for index in range(10):
            store.write_bytes(f"k/{index}", b"x")
        first = store.search(limit=3)
        store.search(page_key=first.next_page_key, limit=3)
        items = store.search_all()
        next(items)
        items.close()
        store.chunk_store.search(limit=2)  # persisty's own search stops at a full page too
        factory.drop_tables(store.item_meta, store.chunk_meta)  # "database table is locked" if one is


class TestSqlTableStore:
    """The fast SQL paths store and load what persisty's SQLAlchemy paths do."""

    def test_datetimes_round_trip_and_are_stored_as_sqlalchemy_stores_them(self, store, sqlite_url):
        item = store.write_bytes("fast", b"x")  # the prepared-statement INSERT
        items = store.item_store
        row = items.read("fast")
        assert row.updated_at == item.updated_at  # a datetime, not SQLite's text
        SqlalchemyTableStore.create(items, dataclasses.replace(row, item_key="slow"))  # persisty's own path
        path = sqlite_url[len("sqlite:///") :]
        with closing(sqlite3.connect(path)) as connection:
            stored = dict(connection.execute(f"SELECT item_key, updated_at FROM {items.table.name}").fetchall())
        assert stored["fast"] == stored["slow"]

    def test_no_deprecated_sqlite_adapter_is_used(self, store):
        # Python 3.12 deprecates sqlite3's default datetime adapter and converters.
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            store.write_bytes("k", b"x" * (CHUNK + 1))
            assert store.read("k").read_bytes() == b"x" * (CHUNK + 1)
            assert [i.key for i in store.search_all()] == ["k"]
            assert store.remove_orphan_chunks(timedelta(0)) == 0
            assert store.delete("k")


class TestStorageErrors:
    def test_unreachable_postgres_is_storage_unavailable(self):
        factory = SqlStoreFactory(
            "postgresql://postgres@127.0.0.1:1/test", engine_kwargs={"connect_args": {"connect_timeout": 2}}
        )
        with pytest.raises(StorageUnavailableError):
            ChunkDataStore("unreachable", factory)

    def test_postgres_going_away_is_storage_unavailable(self):
        factory = SqlStoreFactory(POSTGRES_URL)
        store = ChunkDataStore(f"t{uuid.uuid4().hex[:12]}", factory, chunk_size=CHUNK)
        try:
            store.write_bytes("k", b"x")
            factory.engine.dispose()
            factory.engine.pool._creator = _refuse  # the database server is gone
            for operation in (
                lambda: store.read("k"),
                lambda: store.write_bytes("k2", b"y"),
                lambda: list(store.search_all()),
                lambda: store.count(),
                lambda: store.delete("k"),
            ):
                with pytest.raises(StorageUnavailableError):
                    operation()
        finally:
            healthy = SqlStoreFactory(POSTGRES_URL)
            healthy.drop_tables(store.item_meta, store.chunk_meta)


def _refuse(*args, **kwargs):
    import psycopg2

    return psycopg2.connect("postgresql://postgres@127.0.0.1:1/test", connect_timeout=2)
