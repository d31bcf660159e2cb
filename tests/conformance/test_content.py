"""Round trips, metadata, ranges and overwrites: the same on every backend."""

import io
from datetime import datetime, timedelta, timezone

import pytest

from persisty_data.errors import ContentChangedError, InvalidRangeError
from tests.conformance.helpers import random_bytes, sha256


def _sizes(boundary):
    return [0, 1, boundary - 1, boundary, boundary + 1, 3 * 1024 * 1024 + 17]


class TestRoundTrip:
    def test_sizes_round_trip_with_metadata(self, store, backend):
        for index, size in enumerate(_sizes(backend.boundary)):
            data = random_bytes(size, seed=index)
            key = f"round/{size}.bin"
            before = datetime.now(timezone.utc) - timedelta(seconds=2)
            written = store.write_bytes(key, data)
            item = store.read(key)
            assert item is not None, size
            assert item.key == key
            assert item.size == size == written.size
            assert item.etag == sha256(data) == written.etag
            assert item.content_type == "application/octet-stream"
            assert item.updated_at.tzinfo is not None
            assert item.updated_at.utcoffset() == timedelta(0)
            assert before <= item.updated_at <= datetime.now(timezone.utc) + timedelta(seconds=2)
            assert item.read_bytes() == data, size
            with item.get_data_reader() as reader:
                assert reader.read() == data

    def test_stream_of_odd_sized_writes(self, store, backend):
        data = random_bytes(backend.boundary * 2 + 333, seed=7)
        with store.get_data_writer("odd/writes.dat") as writer:
            position = 0
            step = 1
            while position < len(data):
                writer.write(memoryview(data)[position : position + step])
                position += step
                step = step * 3 + 1
            assert writer.tell() == len(data)
        assert writer.item.etag == sha256(data)
        assert store.read("odd/writes.dat").read_bytes() == data

    def test_caller_may_reuse_its_buffer_once_write_returns(self, store, backend):
        # Large writes are hashed on another thread: the writer must be done with the
        # caller's bytes (hash included) when write() returns.
        data = random_bytes(backend.boundary * 2 + 4321, seed=11)
        buffer = bytearray(1024 * 1024)
        with store.get_data_writer("reused.bin") as writer:
            for start in range(0, len(data), len(buffer)):
                piece = data[start : start + len(buffer)]
                buffer[: len(piece)] = piece
                writer.write(memoryview(buffer)[: len(piece)])
                buffer[:] = bytes(len(buffer))  # scribble over it at once
        assert writer.item.etag == sha256(data)
        assert store.read("reused.bin").read_bytes() == data

    def test_write_stream(self, store):
        data = random_bytes(100_000, seed=3)
        item = store.write_stream("stream.bin", io.BytesIO(data), "application/x-test")
        assert item.size == len(data)
        assert item.content_type == "application/x-test"
        assert store.read("stream.bin").read_bytes() == data

    def test_etag_is_identical_for_identical_bytes(self, store):
        a = store.write_bytes("same/a", b"identical")
        b = store.write_bytes("same/b", b"identical")
        assert a.etag == b.etag == sha256(b"identical")

    def test_reads_in_small_pieces(self, store, backend):
        data = random_bytes(backend.boundary + 5000, seed=11)
        store.write_bytes("pieces", data)
        out = bytearray()
        with store.read("pieces").get_data_reader() as reader:
            while True:
                piece = reader.read(777)
                if not piece:
                    break
                out += piece
        assert bytes(out) == data


class TestContentType:
    def test_given_type_is_kept(self, store):
        assert store.write_bytes("a.bin", b"x", "Image/PNG").content_type == "image/png"
        assert store.read("a.bin").content_type == "image/png"

    def test_type_parameters_are_kept(self, store):
        store.write_bytes("p.txt", b"x", "text/plain; charset=utf-8")
        assert store.read("p.txt").content_type == "text/plain; charset=utf-8"

    def test_guessed_from_extension(self, store):
        assert store.write_bytes("img/photo.png", b"x").content_type == "image/png"
        assert store.read("img/photo.png").content_type == "image/png"
        assert store.read("img/photo.png").content_type == "image/png"

    def test_default_octet_stream(self, store):
        store.write_bytes("noext", b"x")
        assert store.read("noext").content_type == "application/octet-stream"

    def test_malformed_type_refused(self, store):
        from persisty_data.errors import MalformedContentTypeError

        store.write_bytes("source", b"x", "text/plain")
        for bad in MALFORMED_TYPES:
            with pytest.raises(MalformedContentTypeError):
                store.write_bytes("bad-type", b"x", bad)
            with pytest.raises(MalformedContentTypeError):
                store.get_data_writer("bad-type", bad)
            with pytest.raises(MalformedContentTypeError):
                store.write_stream("bad-type", io.BytesIO(b"x"), bad)
            with pytest.raises(MalformedContentTypeError):
                store.copy_data_from(store, "source", "bad-type", bad)
        assert store.read("bad-type") is None

    def test_canonical_form_is_stored(self, store):
        item = store.write_bytes("c.txt", b"x", 'Text/Plain ;Charset="utf-8"')
        assert item.content_type == store.read("c.txt").content_type == "text/plain; charset=utf-8"

    def test_an_image_only_store_refuses_a_list_that_starts_with_an_image(self, make_store):
        from persisty_data.errors import ContentTypeNotPermittedError, MalformedContentTypeError

        store = make_store(permitted_content_types=("image/*",))
        for bad in ("image/png,text/html", "image/png, text/html", "image/png;a=b,text/html", "image/png text/html"):
            with pytest.raises(MalformedContentTypeError):
                store.write_bytes("x.png", b"<script>alert(1)</script>", bad)
        with pytest.raises(ContentTypeNotPermittedError):
            store.write_bytes("x.png", b"<script>alert(1)</script>", "text/html")
        assert store.read("x.png") is None
        assert store.write_bytes("x.png", b"x", "image/png").content_type == "image/png"

    def test_permitted_types_are_parsed_when_the_store_is_made(self, make_store):
        from persisty_data.errors import MalformedContentTypeError

        for bad in (("image/png,text/html",), ("image",), ("*/png",), ("image/png; q=1",)):
            with pytest.raises(MalformedContentTypeError):
                make_store(permitted_content_types=bad)
        assert make_store(permitted_content_types=(" Image/* ",)).get_meta().permitted_content_types == ("image/*",)


MALFORMED_TYPES = (
    "text/plain\r\nX-Evil: 1",
    "nonsense",
    "a" * 300 + "/b",
    "image/png,text/html",
    "text/html;",
    "image/*",
    'text/plain; charset="utf-8',
)


class TestRanges:
    def test_ranges_at_and_across_boundaries(self, store, backend):
        b = backend.boundary
        data = random_bytes(3 * b + 10, seed=5)
        store.write_bytes("ranges.bin", data)
        item = store.read("ranges.bin")
        size = len(data)
        cases = [
            (0, 1),
            (0, b),
            (b - 1, 2),
            (b, b),
            (b + 1, 10),
            (b - 3, b + 6),
            (2 * b - 1, b + 2),
            (size - 1, 10),
            (size, 5),
            (size + 10, 1),
            (5, 0),
            (0, None),
            (b, None),
            (size - 3, None),
        ]
        for offset, length in cases:
            expected = data[offset : None if length is None else offset + length]
            with item.get_data_reader(offset, length) as reader:
                assert reader.read() == expected, (offset, length)
            assert item.read_bytes(offset, length) == expected, (offset, length)

    def test_negative_range_refused(self, store):
        item = store.write_bytes("r", b"abc")
        with pytest.raises(InvalidRangeError):
            item.get_data_reader(-1)
        with pytest.raises(InvalidRangeError):
            item.get_data_reader(0, -5)


class TestOverwrite:
    def test_overwrite_replaces_content_and_metadata(self, store):
        store.write_bytes("doc.txt", b"first version")
        second = store.write_bytes("doc.txt", b"second", "text/markdown")
        item = store.read("doc.txt")
        assert item.read_bytes() == b"second"
        assert item.etag == sha256(b"second") == second.etag
        assert item.size == 6
        assert item.content_type == "text/markdown"
        assert store.count() == 1

    def test_stale_item_never_reads_new_content(self, store):
        old = store.write_bytes("v", b"old content")
        store.write_bytes("v", b"new content!")
        with pytest.raises(ContentChangedError):
            with old.get_data_reader() as reader:
                reader.read()

    def test_stale_item_of_deleted_content(self, store):
        old = store.write_bytes("gone", b"bytes")
        assert store.delete("gone")
        with pytest.raises(ContentChangedError):
            with old.get_data_reader() as reader:
                reader.read()


class TestMissing:
    def test_read_missing_is_none(self, store):
        assert store.read("nope") is None
        assert store.read("deep/nope/file.txt") is None

    def test_delete_missing_is_false(self, store):
        assert store.delete("nope") is False

    def test_read_batch(self, store):
        store.write_bytes("b/1", b"1")
        store.write_bytes("b/3", b"333")
        items = store.read_batch(["b/1", "b/2", "b/3"])
        assert [i.size if i else None for i in items] == [1, None, 3]

    def test_copy_from_missing_is_none(self, store):
        assert store.copy_data_from(store, "missing", "target") is None
        assert store.read("target") is None


class TestDelete:
    def test_delete_then_gone(self, store):
        store.write_bytes("d/x.txt", b"x")
        assert store.delete("d/x.txt") is True
        assert store.read("d/x.txt") is None
        assert store.delete("d/x.txt") is False
        assert store.count() == 0

    def test_delete_through_edit_batch(self, store):
        from persisty.batch_edit import BatchEdit

        store.write_bytes("e/1", b"1")
        store.write_bytes("e/2", b"2")
        edits = [BatchEdit(delete_key="e/1"), BatchEdit(delete_key="e/missing"), BatchEdit(delete_key="e/2")]
        results = store.edit_batch(edits)
        assert [r.success for r in results] == [True, False, True]
        assert [r.edit for r in results] == edits
        assert store.count() == 0

    def test_edit_batch_refuses_creates_and_invalid_keys_per_edit(self, store):
        from persisty.batch_edit import BatchEdit

        source = store.write_bytes("src", b"data")
        results = store.edit_batch(
            [BatchEdit(create_item=source), BatchEdit(delete_key="../x"), BatchEdit(delete_key="src")]
        )
        assert [r.success for r in results] == [False, False, True]
        assert results[0].code == "unsupported_operation"
        assert results[1].code == "invalid_key"

    def test_update_is_refused(self, store):
        from persisty_data.errors import UnsupportedOperationError

        item = store.write_bytes("u", b"x")
        with pytest.raises(UnsupportedOperationError):
            store.update(item)
        assert store.read("u").read_bytes() == b"x"


class TestCopy:
    def test_copy_within_store(self, store):
        source = store.write_bytes("src/a.txt", b"copy me", "text/x-custom")
        copied = store.copy_data_from(store, "src/a.txt", "dst/a.txt")
        assert copied.key == "dst/a.txt"
        assert copied.etag == source.etag
        assert copied.content_type == "text/x-custom"
        assert store.read("dst/a.txt").read_bytes() == b"copy me"
        assert store.read("src/a.txt").read_bytes() == b"copy me"

    def test_copy_between_stores_of_one_backend(self, make_store, backend):
        source_store = make_store()
        target_store = make_store()
        data = random_bytes(backend.boundary + 99, seed=2)
        source_store.write_bytes("big.bin", data, "application/x-big")
        copied = target_store.copy_data_from(source_store, "big.bin")
        assert copied.key == "big.bin"
        assert copied.etag == sha256(data)
        assert target_store.read("big.bin").read_bytes() == data
        assert target_store.read("big.bin").content_type == "application/x-big"

    def test_copy_can_change_content_type(self, store):
        store.write_bytes("t1", b"x", "text/plain")
        assert store.copy_data_from(store, "t1", "t2", content_type="text/csv").content_type == "text/csv"

    def test_create_copies_an_item_and_refuses_to_replace(self, make_store):
        from persisty_data.errors import KeyConflictError

        source_store = make_store()
        target_store = make_store()
        item = source_store.write_bytes("c.txt", b"created")
        created = target_store.create(item)
        assert created.etag == item.etag
        assert target_store.read("c.txt").read_bytes() == b"created"
        with pytest.raises(KeyConflictError):
            target_store.create(item)


class TestMeta:
    def test_meta(self, make_store):
        store = make_store(max_item_size=1000, permitted_content_types=("image/*",))
        meta = store.get_meta()
        assert meta.max_item_size == 1000
        assert meta.permitted_content_types == ("image/*",)
        assert [a.name for a in meta.attrs] == ["key", "size", "content_type", "etag", "updated_at"]
        assert meta.store_factory.create(meta) is store
