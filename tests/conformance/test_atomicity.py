"""New content appears in one step, failed writes leave nothing, limits hold."""

import gc
import threading

import pytest

from persisty_data.errors import ContentChangedError, ContentTypeNotPermittedError, ItemTooLargeError
from tests.conformance.helpers import random_bytes, sha256


class Boom(Exception):
    pass


class TestAtomicWrites:
    def test_exception_in_with_keeps_old_content_and_leaves_no_debris(self, store, backend):
        store.write_bytes("k", b"old content")
        with pytest.raises(Boom):
            with store.get_data_writer("k") as writer:
                writer.write(random_bytes(backend.boundary * 2 + 5))
                raise Boom()
        assert store.read("k").read_bytes() == b"old content"
        assert backend.debris(store) == []

    def test_exception_on_new_key_leaves_nothing(self, store, backend):
        with pytest.raises(Boom):
            with store.get_data_writer("new/key") as writer:
                writer.write(b"partial")
                raise Boom()
        assert store.read("new/key") is None
        assert store.count() == 0
        assert backend.debris(store) == []

    def test_nothing_visible_until_close(self, store, backend):
        store.write_bytes("k", b"old")
        writer = store.get_data_writer("k")
        writer.write(random_bytes(backend.boundary + 10))
        assert store.read("k").read_bytes() == b"old"
        assert store.count() == 1
        with pytest.raises(ValueError, match="writer_is_open"):
            writer.get_item()  # nothing published yet
        writer.close()
        assert store.read("k").size == backend.boundary + 10
        assert writer.get_item().etag == store.read("k").etag
        assert backend.debris(store) == []

    def test_explicit_abort(self, store, backend):
        writer = store.get_data_writer("aborted")
        writer.write(b"abc")
        writer.abort()
        writer.close()  # closing after abort publishes nothing
        assert writer.item is None
        with pytest.raises(ValueError, match="writer_is_aborted"):
            writer.get_item()
        assert store.read("aborted") is None
        assert backend.debris(store) == []
        with pytest.raises(ValueError):
            writer.write(b"more")

    def test_dropped_writer_publishes_nothing(self, store, backend):
        writer = store.get_data_writer("dropped")
        writer.write(b"abc")
        del writer
        gc.collect()
        assert store.read("dropped") is None
        assert backend.debris(store) == []

    def test_two_writers_last_to_finish_wins(self, store, backend):
        store.write_bytes("k", b"original")
        first = store.get_data_writer("k")
        second = store.get_data_writer("k")
        first_data = random_bytes(backend.boundary * 2, seed=1)
        second_data = random_bytes(backend.boundary + 3, seed=2)
        first.write(first_data)
        second.write(second_data)
        second.close()
        first.close()
        item = store.read("k")
        assert item.read_bytes() == first_data
        assert item.etag == sha256(first_data)
        assert backend.debris(store) == []

    def test_reader_of_replaced_content_never_mixes(self, store, backend):
        old = random_bytes(backend.boundary * 3, seed=1)
        new = random_bytes(backend.boundary * 3, seed=2)
        store.write_bytes("k", old)
        reader = store.read("k").get_data_reader()
        head = reader.read(backend.boundary // 2)
        store.write_bytes("k", new)
        try:
            rest = reader.read()
            assert head + rest == old
        except ContentChangedError:
            pass
        finally:
            reader.close()

    def test_concurrent_writers_and_readers(self, store, backend):
        versions = {sha256(d): d for d in (random_bytes(backend.boundary * 2 + i, seed=i) for i in range(4))}
        contents = list(versions.values())
        store.write_bytes("hot", contents[0])
        errors = []

        def write(index):
            try:
                for round_ in range(5):
                    store.write_bytes("hot", contents[(index + round_) % len(contents)])
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        def read():
            try:
                for _ in range(10):
                    item = store.read("hot")
                    try:
                        data = item.read_bytes()
                    except ContentChangedError:
                        continue
                    assert sha256(data) == item.etag
                    assert data in contents
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(i,)) for i in range(3)]
        threads += [threading.Thread(target=read) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        final = store.read("hot")
        assert final.read_bytes() in contents
        assert store.count() == 1
        assert backend.debris(store) == []


class TestLimits:
    def test_max_item_size_counts_written_bytes(self, make_store, backend):
        store = make_store(max_item_size=backend.boundary + 10)
        assert store.write_bytes("fits", random_bytes(backend.boundary + 10)).size == backend.boundary + 10
        store.write_bytes("k", b"old")
        with pytest.raises(ItemTooLargeError):
            with store.get_data_writer("k") as writer:
                for _ in range(backend.boundary // 1000 + 2):
                    writer.write(b"z" * 1000)
        assert store.read("k").read_bytes() == b"old"
        with pytest.raises(ItemTooLargeError):
            store.write_bytes("new", random_bytes(backend.boundary + 11))
        assert store.read("new") is None
        assert sorted(i.key for i in store.search_all()) == ["fits", "k"]
        assert backend.debris(store) == []

    def test_zero_max_size(self, make_store):
        store = make_store(max_item_size=0)
        assert store.write_bytes("empty", b"").size == 0
        with pytest.raises(ItemTooLargeError):
            store.write_bytes("one", b"1")
        assert store.read("one") is None

    def test_copy_respects_target_limits(self, make_store, backend):
        source = make_store()
        target = make_store(max_item_size=10, permitted_content_types=("text/*",))
        source.write_bytes("big.txt", b"x" * 11)
        source.write_bytes("small.bin", b"x")
        with pytest.raises(ItemTooLargeError):
            target.copy_data_from(source, "big.txt")
        with pytest.raises(ContentTypeNotPermittedError):
            target.copy_data_from(source, "small.bin")
        assert target.count() == 0
        assert backend.debris(target) == []

    def test_permitted_content_types(self, make_store, backend):
        store = make_store(permitted_content_types=("image/*", "text/plain"))
        assert store.write_bytes("a.png", b"png").content_type == "image/png"
        assert store.write_bytes("a.txt", b"txt").content_type == "text/plain"
        assert store.write_bytes("x", b"t", "text/plain; charset=utf-8").content_type.startswith("text/plain")
        for key, content_type in (("a.bin", None), ("a.html", None), ("a.png", "application/pdf"), ("b", "text/html")):
            with pytest.raises(ContentTypeNotPermittedError):
                store.write_bytes(key, b"nope", content_type)
        assert store.read("a.png").read_bytes() == b"png"
        assert sorted(i.key for i in store.search_all()) == ["a.png", "a.txt", "x"]
        assert backend.debris(store) == []
