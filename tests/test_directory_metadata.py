"""DirectoryDataStore metadata: an xattr of each file where the filesystem has them, else sidecars."""

import hashlib
import os

import pytest

from persisty_data.directory.directory_data_item import DirectoryDataItem
from persisty_data.directory.directory_data_store import (
    XATTR_NAME,
    DirectoryDataStore,
    _parse_xattr,
    _xattrs_supported,
)


def _sidecar_files(store: DirectoryDataStore):
    return sorted(name for _, _, names in os.walk(store._sidecar_dir) for name in names)


@pytest.fixture
def root(tmp_path):
    return str(tmp_path / "root")


needs_xattrs = pytest.mark.skipif(not hasattr(os, "setxattr"), reason="no extended attributes on this platform")


class TestSidecarMode:
    @pytest.fixture
    def store(self, root):
        return DirectoryDataStore(root, xattrs=False)

    def test_metadata_lives_in_sidecars(self, store, root, monkeypatch):
        store.write_bytes("a/doc", b"content", "application/x-special")
        assert len(_sidecar_files(store)) == 1
        reopened = DirectoryDataStore(root, xattrs=False)
        monkeypatch.setattr(DirectoryDataItem, "_open", lambda self: pytest.fail("content was read"))
        item = reopened.read("a/doc")
        assert (item.content_type, item.etag) == ("application/x-special", hashlib.sha256(b"content").hexdigest())

    def test_file_changed_behind_the_stores_back(self, store, root):
        store.write_bytes("changed.txt", b"original", "text/x-kept")
        path = os.path.join(root, "changed.txt")
        with open(path, "wb") as file:
            file.write(b"edited by hand")
        os.utime(path, ns=(1, 1))
        item = store.read("changed.txt")
        assert item.etag == hashlib.sha256(b"edited by hand").hexdigest()
        assert item.content_type == "text/x-kept"

    def test_delete_removes_the_sidecar(self, store):
        store.write_bytes("k", b"1")
        store.write_bytes("k", b"2")
        assert len(_sidecar_files(store)) == 1
        assert store.delete("k")
        assert _sidecar_files(store) == []


@needs_xattrs
class TestXattrMode:
    @pytest.fixture
    def store(self, root):
        store = DirectoryDataStore(root)
        if not store.xattrs:
            pytest.skip("this filesystem has no user extended attributes")
        return store

    def test_metadata_lives_with_the_file(self, store, root, monkeypatch):
        store.write_bytes("a/doc", b"content", "application/x-special; q=1")
        assert _sidecar_files(store) == []
        assert os.getxattr(os.path.join(root, "a", "doc"), XATTR_NAME).endswith(b"application/x-special; q=1")
        reopened = DirectoryDataStore(root)
        monkeypatch.setattr(DirectoryDataItem, "_open", lambda self: pytest.fail("content was read"))
        item = reopened.read("a/doc")
        assert (item.content_type, item.etag) == ("application/x-special; q=1", hashlib.sha256(b"content").hexdigest())

    def test_sidecars_of_an_earlier_version_are_read_and_removed(self, root):
        legacy = DirectoryDataStore(root, xattrs=False)
        legacy.write_bytes("old.bin", b"old", "application/x-old")
        store = DirectoryDataStore(root)
        item = store.read("old.bin")
        assert (item.content_type, item.etag) == ("application/x-old", hashlib.sha256(b"old").hexdigest())
        assert store.delete("old.bin")
        assert _sidecar_files(store) == []

    def test_a_stale_xattr_is_repaired(self, store, root):
        store.write_bytes("k.txt", b"first", "text/x-kept")
        path = os.path.join(root, "k.txt")
        with open(path, "r+b") as file:  # same inode: the xattr stays, stale
            file.write(b"FIRST")
        os.utime(path, ns=(1, 1))
        item = store.read("k.txt")
        assert (item.content_type, item.etag) == ("text/x-kept", hashlib.sha256(b"FIRST").hexdigest())
        assert _parse_xattr(os.getxattr(path, XATTR_NAME))[3] == hashlib.sha256(b"FIRST").hexdigest()

    def test_garbage_in_the_xattr_is_ignored(self, store, root):
        store.write_bytes("g.txt", b"data")
        os.setxattr(os.path.join(root, "g.txt"), XATTR_NAME, b"\xff not ours")
        assert store.read("g.txt").etag == hashlib.sha256(b"data").hexdigest()

    def test_xattr_support_is_probed(self, root):
        store = DirectoryDataStore(root)
        assert store.xattrs == _xattrs_supported(store._temp_dir)
        assert os.listdir(store._temp_dir) == []
