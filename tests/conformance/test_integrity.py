"""A full read checks the content against the etag: damaged bytes are never returned silently."""

import pytest
from persisty.impl.mem.mem_store_factory import MemStoreFactory

from persisty_data.chunk.chunk_data_store import ChunkDataStore
from persisty_data.errors import ContentCorruptedError
from persisty_data.verify import verify_store
from tests.backend_base import flip_byte
from tests.conformance.helpers import random_bytes, sha256

SIZE = 5000  # several chunks on the chunk backends


@pytest.fixture
def corrupt_item(backend, store):
    """An item of store whose first stored byte was flipped behind the store's back."""
    data = random_bytes(SIZE, seed=7)
    store.write_bytes("dir/bad.bin", data)
    backend.corrupt(store, "dir/bad.bin")
    item = store.read("dir/bad.bin")
    assert item is not None and item.etag == sha256(data) and item.size == SIZE
    return item


class TestFullReadsAreChecked:
    def test_read_to_the_end_raises(self, corrupt_item):
        with corrupt_item.get_data_reader() as reader:
            with pytest.raises(ContentCorruptedError) as info:
                reader.read()
        assert info.value.key == "dir/bad.bin"

    def test_read_bytes_raises(self, corrupt_item):
        with pytest.raises(ContentCorruptedError):
            corrupt_item.read_bytes()

    def test_reading_exactly_size_bytes_raises(self, corrupt_item):
        # A caller that never asks for the end of the stream still learns of the damage.
        with corrupt_item.get_data_reader() as reader:
            with pytest.raises(ContentCorruptedError):
                reader.read(SIZE)

    def test_small_reads_raise_at_the_end(self, corrupt_item):
        got = bytearray()
        with corrupt_item.get_data_reader() as reader:
            with pytest.raises(ContentCorruptedError):
                while True:
                    piece = reader.read(333)
                    if not piece:
                        break
                    got += piece
        assert len(got) < SIZE  # the last piece never arrived

    def test_iteration_raises(self, corrupt_item):
        with corrupt_item.get_data_reader() as reader:
            with pytest.raises(ContentCorruptedError):
                for _ in reader:
                    pass

    def test_whole_range_raises(self, corrupt_item):
        # What a hosted download asks for: offset 0, length = size.
        with corrupt_item.get_data_reader(0, SIZE) as reader:
            with pytest.raises(ContentCorruptedError):
                reader.read()

    def test_a_range_cannot_be_checked(self, corrupt_item):
        # Documented: there is no hash of a part, so a range returns what is stored.
        data = random_bytes(SIZE, seed=7)
        assert corrupt_item.read_bytes(0, 10) == flip_byte(data)[:10]
        assert corrupt_item.read_bytes(10) == data[10:]

    def test_intact_items_read_normally(self, store, corrupt_item):
        data = random_bytes(SIZE, seed=8)
        store.write_bytes("dir/good.bin", data)
        item = store.read("dir/good.bin")
        assert item.read_bytes() == data
        with item.get_data_reader() as reader:
            assert reader.read(SIZE) == data and reader.read() == b""
        with item.get_data_reader() as reader:
            assert b"".join(reader) == data


class TestCopiesRefuseCorruptSources:
    def test_copy_to_a_new_key_publishes_nothing(self, backend, store, corrupt_item):
        with pytest.raises(ContentCorruptedError):
            store.copy_data_from(store, "dir/bad.bin", "dir/copy.bin")
        assert store.read("dir/copy.bin") is None
        assert backend.debris(store) == []

    def test_copy_over_an_item_keeps_it(self, store, corrupt_item):
        store.write_bytes("dir/kept.bin", b"old content")
        with pytest.raises(ContentCorruptedError):
            store.copy_data_from(store, "dir/bad.bin", "dir/kept.bin")
        assert store.read("dir/kept.bin").read_bytes() == b"old content"

    def test_copy_to_another_store_of_the_backend(self, backend, make_store, store, corrupt_item):
        other = make_store()
        with pytest.raises(ContentCorruptedError):
            other.copy_data_from(store, "dir/bad.bin")
        assert other.read("dir/bad.bin") is None
        assert backend.debris(other) == []

    def test_copy_and_create_in_another_kind_of_store(self, store, corrupt_item):
        other = ChunkDataStore("other", MemStoreFactory(), MemStoreFactory(), chunk_size=1024)
        with pytest.raises(ContentCorruptedError):
            other.copy_data_from(store, "dir/bad.bin")
        with pytest.raises(ContentCorruptedError):
            other.create(corrupt_item)
        assert other.read("dir/bad.bin") is None
        assert list(other.chunk_store.search_all()) == []


class TestVerifyStore:
    def test_reports_each_corrupt_key(self, store, corrupt_item):
        store.write_bytes("dir/good.bin", b"fine")
        store.write_bytes("empty", b"")
        store.write_bytes("other/x", random_bytes(SIZE, seed=9))
        report = verify_store(store)
        assert [c.key for c in report.corrupt] == ["dir/bad.bin"]
        assert "sha256" in report.corrupt[0].detail
        assert report.items == 4 and report.bytes == 2 * SIZE + 4

    def test_prefix(self, store, corrupt_item):
        store.write_bytes("other/x", b"fine")
        assert verify_store(store, "other/").corrupt == []
        assert [c.key for c in verify_store(store, "dir/").corrupt] == ["dir/bad.bin"]

    def test_clean_store(self, store):
        store.write_bytes("a", b"a")
        seen = []
        report = verify_store(store, on_item=lambda item, error: seen.append((item.key, error)))
        assert report.corrupt == [] and report.items == 1 and seen == [("a", None)]
