"""
Chunk store uploads are leased: a cleanup never removes an upload whose writer is alive,
and a writer whose upload was collected never publishes (its close fails cleanly).
The clock is injected, so "two hours later" takes no time.
"""

import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from persisty.impl.mem.mem_store_factory import MemStoreFactory

from persisty_data.chunk.chunk_data_store import ChunkDataStore
from persisty_data.chunk.sql_store_factory import SqlStoreFactory
from persisty_data.errors import UploadExpiredError
from tests.conformance.helpers import random_bytes, sha256
from tests.conftest import POSTGRES_URL

CHUNK = 1024
HOUR = timedelta(hours=1)


class Clock:
    def __init__(self):
        self.now = datetime(2030, 1, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture(params=["mem", "sqlite", "postgres"])
def store(request, tmp_path, clock):
    if request.param == "mem":
        yield ChunkDataStore("files", MemStoreFactory(), MemStoreFactory(), chunk_size=CHUNK, clock=clock)
        return
    url = POSTGRES_URL if request.param == "postgres" else f"sqlite:///{tmp_path / 'chunks.sqlite'}"
    factory = SqlStoreFactory(url)
    store = ChunkDataStore(f"t{uuid.uuid4().hex[:12]}", factory, chunk_size=CHUNK, clock=clock)
    try:
        yield store
    finally:
        factory.drop_tables(store.item_meta, store.chunk_meta)
        factory.engine.dispose()


def _start_write(store, key: str, data: bytes):
    """A writer that has stored its first batch of chunks (so it holds a lease)."""
    writer = store.get_data_writer(key)
    batch = store.write_batch_chunks * CHUNK
    writer.write(data[: batch + CHUNK])  # one chunk past a batch: the batch is flushed
    assert store.chunk_store.count() > 0
    return writer, batch + CHUNK


def _upload_ids(store):
    return {c.upload_id for c in store.chunk_store.search_all()}


def test_a_slow_writer_that_keeps_writing_keeps_its_chunks(store, clock):
    data = random_bytes(CHUNK * 200)
    writer, written = _start_write(store, "k", data)
    clock.advance(2 * HOUR)  # the first chunks are now old...
    half = written + store.write_batch_chunks * CHUNK
    writer.write(data[written:half])  # ...but the writer shows it is alive
    assert store.remove_orphan_chunks(older_than=HOUR) == 0
    writer.write(data[half:])
    writer.close()
    item = store.read("k")
    assert item.read_bytes() == data and item.etag == sha256(data)
    assert _upload_ids(store) == {item.upload_id}


def test_an_expired_upload_fails_the_close_and_keeps_the_old_content(store, clock):
    old = store.write_bytes("k", b"old content")
    writer, _ = _start_write(store, "k", random_bytes(CHUNK * 100))
    clock.advance(2 * HOUR)  # the writer went quiet
    assert store.remove_orphan_chunks(older_than=HOUR) == 1
    with pytest.raises(UploadExpiredError):
        writer.close()
    item = store.read("k")
    assert item.etag == old.etag and item.read_bytes() == b"old content"
    assert _upload_ids(store) == {old.upload_id}


def test_an_expired_upload_fails_the_next_write(store, clock):
    writer, written = _start_write(store, "k", random_bytes(CHUNK * 200))
    clock.advance(2 * HOUR)
    assert store.remove_orphan_chunks(older_than=HOUR) == 1
    with pytest.raises(UploadExpiredError):
        writer.write(random_bytes(store.write_batch_chunks * CHUNK))  # renewing the lease fails
    assert writer.closed and store.read("k") is None
    assert store.chunk_store.count() == 0


def test_a_young_lease_is_not_collected(store, clock):
    writer, _ = _start_write(store, "k", random_bytes(CHUNK * 100))
    clock.advance(HOUR - timedelta(seconds=1))
    assert store.remove_orphan_chunks(older_than=HOUR) == 0
    writer.close()
    assert store.read("k").size == CHUNK * (store.write_batch_chunks + 1)


def _clean(store, barrier, collected) -> None:
    barrier.wait()
    collected.extend(d.name for d in store.gc(older_than=HOUR).removed)


def test_publish_and_cleanup_racing_never_publish_missing_chunks(store, clock):
    old = store.write_bytes("k", b"old")
    outcomes = set()
    for round_number in range(12):
        data = random_bytes(CHUNK * 70, seed=round_number)
        writer, written = _start_write(store, "k", data)
        writer.write(data[written:])
        clock.advance(2 * HOUR)
        barrier = threading.Barrier(2)
        collected: list = []
        cleaner = threading.Thread(target=_clean, args=(store, barrier, collected))
        cleaner.start()
        barrier.wait()
        try:
            writer.close()
            published = True
        except UploadExpiredError:
            published = False
        cleaner.join()
        outcomes.add(published)
        item = store.read("k")
        # The upload replaced may be collected too (the publisher deletes it as well).
        if published:
            assert writer.upload_id not in collected
            assert item.read_bytes() == data  # every chunk is there
            old = item
        else:
            assert writer.upload_id in collected
            assert item.etag == old.etag and item.read_bytes() == old.read_bytes()
        assert _upload_ids(store) == ({item.upload_id} if item.size else set())
    assert outcomes  # each round ended one way or the other, consistently
