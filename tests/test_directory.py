"""DirectoryDataStore specifics: layout, sidecars, crash safety, confinement to the root."""

import hashlib
import os
import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest
from persisty.attr.attr_filter import AttrFilter, AttrFilterOp

from persisty_data.directory.directory_data_item import DirectoryDataItem
from persisty_data.directory.directory_data_store import DIRECT_WRITE_MAX_BYTES, XATTR_NAME, DirectoryDataStore
from persisty_data.errors import InvalidKeyError, KeyConflictError, StorageError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def root(tmp_path):
    return str(tmp_path / "root")


@pytest.fixture
def store(root):
    return DirectoryDataStore(root)


class TestLayout:
    def test_keys_map_to_files(self, store, root):
        store.write_bytes("a/b/c.txt", b"hello")
        with open(os.path.join(root, "a", "b", "c.txt"), "rb") as file:
            assert file.read() == b"hello"
        assert sorted(os.listdir(root)) == [".persisty_data", "a"]

    def test_delete_prunes_empty_directories(self, store, root):
        store.write_bytes("a/b/c.txt", b"1")
        store.write_bytes("a/keep.txt", b"2")
        assert store.delete("a/b/c.txt")
        assert not os.path.exists(os.path.join(root, "a", "b"))
        assert os.path.exists(os.path.join(root, "a", "keep.txt"))
        assert store.delete("a/keep.txt")
        assert sorted(os.listdir(root)) == [".persisty_data"]

    def test_file_and_directory_conflicts(self, store):
        store.write_bytes("a", b"file")
        with pytest.raises(KeyConflictError):
            store.get_data_writer("a/b")
        store.write_bytes("x/y", b"file")
        with pytest.raises(KeyConflictError):
            store.write_bytes("x", b"dir in the way")
        assert store.read("x") is None
        assert store.delete("x") is False
        assert store.read("x/y").read_bytes() == b"file"
        assert os.listdir(store._temp_dir) == []

    def test_new_directories_are_made_durable(self, store, root, monkeypatch):
        # A rename is durable once its directory is synced; a directory made for the
        # item is durable once its own parent is synced. Both happen before write returns.
        synced = []
        real_fsync = os.fsync

        def observing_fsync(fd):
            synced.append(os.readlink(f"/proc/self/fd/{fd}"))
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", observing_fsync)
        store.write_bytes("a/b/c.txt", b"new directories")
        real_root = os.path.realpath(root)
        directories = [os.path.relpath(p, real_root) for p in synced if os.path.isdir(p)]
        assert directories == ["a/b", "a", "."]
        synced.clear()
        store.write_bytes("a/b/d.txt", b"existing directories")
        assert [os.path.relpath(p, real_root) for p in synced if os.path.isdir(p)] == ["a/b"]

    def test_no_fsync_mode(self, root):
        store = DirectoryDataStore(root, fsync=False)
        assert store.write_bytes("fast", b"data").etag == hashlib.sha256(b"data").hexdigest()
        assert store.read("fast").read_bytes() == b"data"


class TestSidecars:
    def test_metadata_survives_restart_without_reading_content(self, root, monkeypatch):
        DirectoryDataStore(root).write_bytes("doc", b"content", "application/x-special")
        reopened = DirectoryDataStore(root)

        def refuse(self):
            raise AssertionError("content was read")

        monkeypatch.setattr(DirectoryDataItem, "_open", refuse)
        item = reopened.read("doc")
        assert item.content_type == "application/x-special"
        assert item.etag == hashlib.sha256(b"content").hexdigest()
        listed = list(reopened.search_all())
        assert [(i.key, i.content_type) for i in listed] == [("doc", "application/x-special")]

    def test_files_added_by_hand_are_items(self, store, root):
        os.makedirs(os.path.join(root, "manual"))
        with open(os.path.join(root, "manual", "photo.jpg"), "wb") as file:
            file.write(b"jpeg bytes")
        item = store.read("manual/photo.jpg")
        assert item.content_type == "image/jpeg"
        assert item.etag == hashlib.sha256(b"jpeg bytes").hexdigest()
        assert [i.key for i in store.search_all()] == ["manual/photo.jpg"]

    def test_file_changed_behind_the_stores_back(self, store, root):
        store.write_bytes("changed.txt", b"original", "text/x-kept")
        path = os.path.join(root, "changed.txt")
        with open(path, "wb") as file:
            file.write(b"edited by hand")
        os.utime(path, ns=(1, 1))
        item = store.read("changed.txt")
        assert item.etag == hashlib.sha256(b"edited by hand").hexdigest()
        assert item.content_type == "text/x-kept"
        assert item.read_bytes() == b"edited by hand"

    def test_listing_does_not_load_sidecars(self, store, monkeypatch):
        for index in range(20):
            store.write_bytes(f"many/{index}", b"x")
        calls = []
        original = DirectoryDataStore._read_sidecar
        monkeypatch.setattr(
            DirectoryDataStore, "_read_sidecar", lambda self, key, ino: calls.append(key) or original(self, key, ino)
        )
        result = store.search(AttrFilter("size", AttrFilterOp.eq, 1))
        assert len(result.results) == 20
        assert calls == []


class TestExtendedAttributes:
    @pytest.fixture(autouse=True)
    def _needs_xattrs(self, store):
        if not store.xattrs:
            pytest.skip("the filesystem has no user extended attributes")

    def test_fsync_covers_the_metadata_attribute(self, store, monkeypatch):
        # The attribute holding content type and etag is set before the temp file's
        # fsync, so one fsync makes content and metadata durable together.
        seen = []
        real_fsync = os.fsync

        def observing_fsync(fd):
            try:
                seen.append(os.getxattr(fd, XATTR_NAME) != b"")
            except OSError:
                seen.append(False)  # a directory, or a file without the attribute
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", observing_fsync)
        store.write_bytes("small", b"x" * 10)
        with store.get_data_writer("streamed") as writer:
            writer.write(b"y" * (DIRECT_WRITE_MAX_BYTES + 1))
        store.copy_data_from(store, "small", "copied")
        # Each write: the temp file (with its attribute), then the parent directory.
        assert seen == [True, False] * 3
        assert store.read("copied").etag == hashlib.sha256(b"x" * 10).hexdigest()

    def test_metadata_fits_in_an_ext4_inode(self, store, root):
        # More than 56 bytes and ext4 (256-byte inodes) gives every file an extra block.
        store.write_bytes("small.bin", b"x" * 1024, "application/octet-stream")
        assert len(os.getxattr(os.path.join(root, "small.bin"), XATTR_NAME)) <= 56
        store.write_bytes("typed", b"x", "image/png")
        item = DirectoryDataStore(root).read("typed")
        assert (item.content_type, item.etag) == ("image/png", hashlib.sha256(b"x").hexdigest())

    def test_version_1_metadata_is_still_read(self, store, root, monkeypatch):
        path = os.path.join(root, "old.txt")
        os.makedirs(root, exist_ok=True)
        with open(path, "wb") as file:
            file.write(b"old")
        stat = os.stat(path)
        value = f"1 3 {stat.st_mtime_ns} {stat.st_ino} {'ab' * 32} text/x-old"
        os.setxattr(path, XATTR_NAME, value.encode("ascii"))
        monkeypatch.setattr(DirectoryDataItem, "_open", lambda self: pytest.fail("content was read"))
        item = store.read("old.txt")
        assert (item.content_type, item.etag) == ("text/x-old", "ab" * 32)

    def test_stale_metadata_of_a_file_rewritten_in_place(self, store, root):
        store.write_bytes("doc", b"12345", "text/x-kept")
        path = os.path.join(root, "doc")
        with open(path, "r+b") as file:
            file.write(b"abcde")  # same size, same inode
        os.utime(path, ns=(1, 1))
        item = store.read("doc")
        assert (item.content_type, item.etag) == ("text/x-kept", hashlib.sha256(b"abcde").hexdigest())


class TestDirectWrite:
    def test_temp_name_clash_is_retried(self, store):
        clash = f"{store._temp_prefix}w-{store._temp_base}"
        counter = next(store._temp_counter) + 1
        for index in range(counter, counter + 3):
            open(f"{clash}{index:x}", "wb").close()
        assert store.write_bytes("k", b"data").etag == hashlib.sha256(b"data").hexdigest()
        assert store.read("k").read_bytes() == b"data"
        assert len(os.listdir(store._temp_dir)) == 3

    def test_failed_write_leaves_no_temp_file(self, store, root, monkeypatch):
        def fail(*args):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "replace", fail)
        with pytest.raises(StorageError):
            store.write_bytes("k", b"data")
        monkeypatch.undo()
        assert store.read("k") is None
        assert os.listdir(store._temp_dir) == []

    def test_large_and_small_writes_agree(self, root):
        for fsync in (True, False):
            store = DirectoryDataStore(root, fsync=fsync)
            for size in (0, 1, DIRECT_WRITE_MAX_BYTES, DIRECT_WRITE_MAX_BYTES + 1):
                data = os.urandom(size)
                written = store.write_bytes(f"s/{size}", bytearray(data), "text/plain")
                item = DirectoryDataStore(root).read(f"s/{size}")
                assert item.read_bytes() == data
                assert item.etag == written.etag == hashlib.sha256(data).hexdigest()
                assert item.content_type == written.content_type == "text/plain"
                assert item.size == written.size == size


class TestCrashSafety:
    def _run(self, code):
        env = dict(os.environ, PYTHONPATH=REPO)
        return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, timeout=60)

    def test_crash_before_publish_leaves_old_file(self, store, root):
        store.write_bytes("k.txt", b"old content")
        result = self._run(
            f"""
            import os
            from persisty_data.directory.directory_data_store import DirectoryDataStore
            store = DirectoryDataStore({root!r})
            writer = store.get_data_writer("k.txt")
            writer.write(b"new content that never lands" * 1000)
            writer._file.flush()
            os._exit(3)
            """
        )
        assert result.returncode == 3, result.stderr
        item = DirectoryDataStore(root).read("k.txt")
        assert item.read_bytes() == b"old content"
        assert item.etag == hashlib.sha256(b"old content").hexdigest()

    def test_crash_between_sidecar_and_rename(self, store, root):
        store.write_bytes("k.txt", b"old content", "text/plain")
        result = self._run(
            f"""
            import os
            from persisty_data.directory.directory_data_store import DirectoryDataStore
            store = DirectoryDataStore({root!r})
            store._publish = lambda temp_path, key, item: os._exit(4)
            with store.get_data_writer("k.txt", "text/html") as writer:
                writer.write(b"new")
            """
        )
        assert result.returncode == 4, result.stderr
        item = DirectoryDataStore(root).read("k.txt")
        assert item.read_bytes() == b"old content"
        assert item.etag == hashlib.sha256(b"old content").hexdigest()

    def test_opening_a_store_leaves_temp_files_to_gc(self, store, root):
        stale = os.path.join(store._temp_dir, "w-stale")
        fresh = os.path.join(store._temp_dir, "w-fresh")
        for path in (stale, fresh):
            with open(path, "wb") as file:
                file.write(b"debris")
        os.utime(stale, (0, 0))
        DirectoryDataStore(root)
        assert sorted(os.listdir(store._temp_dir)) == ["w-fresh", "w-stale"]
        report = store.gc(timedelta(hours=1))
        assert [(d.kind, d.name, d.size_in_bytes) for d in report.removed] == [
            ("temp_file", ".persisty_data/tmp/w-stale", 6)
        ]
        assert os.listdir(store._temp_dir) == ["w-fresh"]


class TestConfinement:
    def test_symlinked_directory_pointing_out_of_root(self, store, root, tmp_path):
        outside = tmp_path / "outside"
        outside.mkdir()
        (outside / "secret.txt").write_bytes(b"secret")
        os.symlink(str(outside), os.path.join(root, "link"))
        assert store.read("link/secret.txt") is None
        with pytest.raises(InvalidKeyError):
            store.write_bytes("link/new.txt", b"escape")
        assert store.delete("link/secret.txt") is False
        assert (outside / "secret.txt").read_bytes() == b"secret"
        assert not (outside / "new.txt").exists()
        assert list(store.search_all()) == []
        assert list(store.search_all(AttrFilter("key", AttrFilterOp.startswith, "link/"))) == []

    def test_symlinked_file_pointing_out_of_root(self, store, root, tmp_path):
        outside = tmp_path / "passwd"
        outside.write_bytes(b"root:x:0:0")
        os.symlink(str(outside), os.path.join(root, "evil"))
        assert store.read("evil") is None
        assert list(store.search_all()) == []
        assert store.delete("evil") is False
        assert outside.read_bytes() == b"root:x:0:0"

    def test_symlink_inside_root_is_followed(self, store, root):
        store.write_bytes("real/file.txt", b"inside")
        os.symlink(os.path.join(root, "real"), os.path.join(root, "alias"))
        assert store.read("alias/file.txt").read_bytes() == b"inside"

    def test_traversal_keys_refused(self, store):
        for key in ("../x", "/etc/passwd", "a/../../x", "a\\..\\b", "a\x00b", ".persisty_data/tmp/x"):
            with pytest.raises(InvalidKeyError):
                store.read(key)
            with pytest.raises(InvalidKeyError):
                store.write_bytes(key, b"x")
            with pytest.raises(InvalidKeyError):
                store.delete(key)

    def test_internal_directory_is_not_listed(self, store):
        store.write_bytes("visible", b"x")
        assert [i.key for i in store.search_all()] == ["visible"]
        assert store.count() == 1


class TestListingCost:
    def test_prefix_scans_only_the_named_directory(self, store, root, monkeypatch):
        for index in range(30):
            store.write_bytes(f"big/{index}/file", b"x")
        store.write_bytes("photos/2024/a.jpg", b"a")
        store.write_bytes("photos/2024/b.jpg", b"b")
        store.write_bytes("photos/2025/c.jpg", b"c")
        scanned = []
        original = os.scandir
        monkeypatch.setattr(
            os, "scandir", lambda path=".": scanned.append(os.path.relpath(path, root)) or original(path)
        )
        keys = [i.key for i in store.search_all(AttrFilter("key", AttrFilterOp.startswith, "photos/2024/"))]
        assert keys == ["photos/2024/a.jpg", "photos/2024/b.jpg"]
        assert scanned == ["photos/2024"]
        scanned.clear()
        keys = [i.key for i in store.search_all(AttrFilter("key", AttrFilterOp.startswith, "photos/202"))]
        assert keys == ["photos/2024/a.jpg", "photos/2024/b.jpg", "photos/2025/c.jpg"]
        assert sorted(scanned) == ["photos", "photos/2024", "photos/2025"]

    def test_paging_skips_directories_already_returned(self, store, root, monkeypatch):
        for group in ("a", "b", "c"):
            for index in range(3):
                store.write_bytes(f"{group}/{index}", b"x")
        first = store.search(limit=4)
        assert [i.key for i in first.results] == ["a/0", "a/1", "a/2", "b/0"]
        scanned = []
        original = os.scandir
        monkeypatch.setattr(
            os, "scandir", lambda path=".": scanned.append(os.path.relpath(path, root)) or original(path)
        )
        second = store.search(page_key=first.next_page_key, limit=4)
        assert [i.key for i in second.results] == ["b/1", "b/2", "c/0", "c/1"]
        assert "a" not in scanned


class TestNativeCopy:
    def test_copy_between_directory_stores_is_done_by_the_os(self, store, tmp_path, monkeypatch):
        data = os.urandom(3 * 1024 * 1024)
        store.write_bytes("src.bin", data, "application/x-src")
        other = DirectoryDataStore(str(tmp_path / "other"))

        def refuse(self, *args, **kwargs):
            raise AssertionError("content streamed through Python")

        monkeypatch.setattr(DirectoryDataItem, "get_data_reader", refuse)
        copied = other.copy_data_from(store, "src.bin", "dst/copy.bin")
        monkeypatch.undo()
        assert copied.etag == hashlib.sha256(data).hexdigest()
        assert copied.content_type == "application/x-src"
        assert other.read("dst/copy.bin").read_bytes() == data
        assert os.listdir(other._temp_dir) == []

    def test_native_copy_respects_limits(self, store, tmp_path):
        from persisty_data.errors import ItemTooLargeError

        store.write_bytes("big", b"x" * 100)
        small = DirectoryDataStore(str(tmp_path / "small"), max_item_size=10)
        with pytest.raises(ItemTooLargeError):
            small.copy_data_from(store, "big")
        assert small.read("big") is None
        assert os.listdir(small._temp_dir) == []
