"""Integrity quirks per backend (the shared cases are in tests/conformance/test_integrity.py)."""

import hashlib
from typing import List

import pytest

from persisty_data.directory.directory_data_store import DirectoryDataStore
from persisty_data.errors import ContentCorruptedError
from persisty_data.readers import IterReader, VerifyingReader, buffered
from persisty_data.verify import verify_store
from tests.backend_base import flip_byte
from tests.backends import corrupt_file
from tests.s3_backends import S3MotoBackend, S3MotoServerBackend

DATA = bytes(range(256)) * 40


def _reader(content: bytes, size: int = len(DATA), etag: str = hashlib.sha256(DATA).hexdigest()):
    pieces = iter([content[i : i + 1000] for i in range(0, len(content), 1000)])
    return buffered(VerifyingReader(IterReader(pieces), "k", size, etag))


class TestVerifyingReader:
    def test_intact(self):
        with _reader(DATA) as reader:
            assert reader.read() == DATA

    @pytest.mark.parametrize("content", [DATA[:-1], DATA + b"x", flip_byte(DATA, len(DATA) - 1)])
    def test_short_long_or_changed(self, content):
        with _reader(content) as reader:
            with pytest.raises(ContentCorruptedError):
                reader.read()
        with _reader(content) as reader:
            with pytest.raises(ContentCorruptedError):
                while reader.read(1000):
                    pass

    def test_empty(self):
        with _reader(b"", 0, hashlib.sha256(b"").hexdigest()) as reader:
            assert reader.read() == b""
        with _reader(b"", 0, hashlib.sha256(b"x").hexdigest()) as reader:
            with pytest.raises(ContentCorruptedError):
                reader.read()


def test_directory_sidecar_mode(tmp_path):
    store = DirectoryDataStore(str(tmp_path / "root"), name="files", xattrs=False)
    store.write_bytes("a/bad.bin", DATA)
    store.write_bytes("a/good.bin", DATA)
    corrupt_file(store._checked_path("a/bad.bin"))
    item = store.read("a/bad.bin")
    assert item.etag == hashlib.sha256(DATA).hexdigest()  # the sidecar still describes the file
    with pytest.raises(ContentCorruptedError):
        item.read_bytes()
    with pytest.raises(ContentCorruptedError):
        store.copy_data_from(store, "a/bad.bin", "a/copy.bin")
    assert store.read("a/copy.bin") is None
    assert [c.key for c in verify_store(store).corrupt] == ["a/bad.bin"]


@pytest.fixture(params=[S3MotoBackend, S3MotoServerBackend])
def s3_store(request, tmp_path):
    with request.param().make(str(tmp_path)) as store:
        yield store


def _count_gets(store) -> List[str]:
    gets: List[str] = []
    store.client.meta.events.register("before-call.s3.GetObject", lambda **kwargs: gets.append("get"))
    return gets


class TestS3ServerCopy:
    def test_copies_its_own_objects_server_side(self, s3_store):
        # S3 keeps the SHA-256 it checked at upload: it vouches for the etag, no bytes travel.
        s3_store.write_bytes("a.bin", DATA)
        gets = _count_gets(s3_store)
        copy = s3_store.copy_data_from(s3_store, "a.bin", "b.bin")
        assert gets == [] and copy.etag == hashlib.sha256(DATA).hexdigest()
        assert s3_store.copy_data_from(s3_store, "b.bin", "c.bin").etag == copy.etag  # a copy's copy too
        assert gets == []

    def test_refuses_an_object_s3_hashes_differently(self, s3_store):
        # Rewritten keeping x-amz-meta-sha256, with S3 computing the SHA-256 of the new bytes.
        s3_store.write_bytes("a.bin", DATA)
        s3_store.write_bytes("kept.bin", b"kept")
        client, s3_key = s3_store.client, s3_store.prefix + "a.bin"
        metadata = client.head_object(Bucket=s3_store.bucket, Key=s3_key)["Metadata"]
        client.put_object(
            Bucket=s3_store.bucket, Key=s3_key, Body=flip_byte(DATA), Metadata=metadata, ChecksumAlgorithm="SHA256"
        )
        gets = _count_gets(s3_store)
        with pytest.raises(ContentCorruptedError):
            s3_store.copy_data_from(s3_store, "a.bin", "kept.bin")
        assert gets == []  # found out before anything was copied
        assert s3_store.read("kept.bin").read_bytes() == b"kept"
