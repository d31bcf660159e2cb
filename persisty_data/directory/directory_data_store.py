"""Stores items as files under a root directory; the tree stays browsable."""

import hashlib
import json
import os
import shutil
import stat as stat_module
import tempfile
import time
from typing import Iterator, Optional, Tuple

from persisty_data.content_types import guess_content_type
from persisty_data.data_item_abc import DataItemABC
from persisty_data.data_store_abc import DataStoreABC, DataStoreMeta, create_data_store_meta
from persisty_data.data_writer_abc import DataWriterABC
from persisty_data.directory.directory_data_item import DirectoryDataItem
from persisty_data.directory.directory_data_writer import DirectoryDataWriter
from persisty_data.directory.os_errors import map_os_errors
from persisty_data.errors import (
    ConfigurationError,
    ContentChangedError,
    InvalidKeyError,
    ItemTooLargeError,
    KeyConflictError,
)
from persisty_data.keys import RESERVED_SEGMENT, validate_key

STALE_TEMP_SECONDS = 24 * 3600
HASH_BUFFER_SIZE = 1024 * 1024


class DirectoryDataStore(DataStoreABC):
    """
    Key ``a/b/c.txt`` is the file ``root/a/b/c.txt``. Content type and etag live in small
    sidecar files under ``root/.persisty_data/meta`` (keyed by a hash of the key), stamped
    with the file's size, mtime and inode so a file changed behind the store's back is
    noticed and its etag recomputed. Writes go to ``root/.persisty_data/tmp``, are
    fsynced (unless fsync=False) and published with an atomic rename.

    No key reaches outside the root: keys are validated, and resolved paths (symlinks
    included) are checked against the root's real path.
    """

    def __init__(
        self,
        root: str,
        name: Optional[str] = None,
        max_item_size: Optional[int] = None,
        permitted_content_types: Optional[Tuple[str, ...]] = None,
        fsync: bool = True,
        create_root: bool = True,
        batch_size: int = 100,
    ):
        self.name = name or os.path.basename(os.path.abspath(root)) or "data"
        self.fsync = fsync
        self._meta = create_data_store_meta(self.name, self, max_item_size, permitted_content_types, batch_size)
        with map_os_errors(store_name=self.name):
            if create_root:
                os.makedirs(root, exist_ok=True)
            if not os.path.isdir(root):
                raise ConfigurationError(f"root_is_not_a_directory:{root}", store_name=self.name)
            self.root = os.path.realpath(root)
            self._internal_dir = os.path.join(self.root, RESERVED_SEGMENT)
            self._temp_dir = os.path.join(self._internal_dir, "tmp")
            self._sidecar_dir = os.path.join(self._internal_dir, "meta")
            os.makedirs(self._temp_dir, exist_ok=True)
            os.makedirs(self._sidecar_dir, exist_ok=True)
        self._remove_stale_temp_files()

    def get_meta(self) -> DataStoreMeta:
        return self._meta

    # region: paths
    def _path(self, key: str) -> str:
        return os.path.join(self.root, *key.split("/"))

    def _is_inside(self, path: str, allow_root: bool = False) -> bool:
        """True if path resolves (symlinks included) inside the root, outside our own dir."""
        real = os.path.realpath(path)
        if allow_root and real == self.root:
            return True
        inside = real.startswith(self.root + os.sep)
        internal = real == self._internal_dir or real.startswith(self._internal_dir + os.sep)
        return inside and not internal

    def _checked_path(self, key: str) -> str:
        """The path for a valid key; refuses a path that resolves outside the root."""
        path = self._path(key)
        if not self._is_inside(path):
            raise InvalidKeyError("resolves_outside_root", key=key, store_name=self.name)
        return path

    def _check_writable(self, key: str) -> str:
        """Refuse keys that escape the root or collide with a directory or a file."""
        path = self._checked_path(key)
        if os.path.isdir(path) and not os.path.islink(path):
            raise KeyConflictError("a_directory_has_this_key", key=key, store_name=self.name)
        parent = os.path.dirname(path)
        while parent != self.root:
            if os.path.lexists(parent):
                if not os.path.isdir(parent):
                    raise KeyConflictError("a_file_is_in_the_way", key=key, store_name=self.name)
                break
            parent = os.path.dirname(parent)
        return path

    # endregion

    # region: reading
    def _read(self, key: str) -> Optional[DirectoryDataItem]:
        path = self._path(key)
        for attempt in range(5):
            try:
                stat = os.stat(path)
            except (FileNotFoundError, NotADirectoryError):
                return None
            except OSError:
                with map_os_errors(key, self.name):
                    raise
            if not _is_regular(stat) or not self._is_inside(path):
                return None
            item = DirectoryDataItem(self, key, path, stat)
            try:
                item._load_sidecar()  # a single read is worth a complete item
                return item
            except ContentChangedError:
                if attempt == 4:
                    raise  # replaced over and over while we looked: give up
        return None  # pragma: no cover

    def _iter_items(self, prefix: str, after: Optional[str]) -> Iterator[DataItemABC]:
        # Start at the deepest directory the prefix names, so a prefix never walks the tree.
        directory_part, _, name_prefix = prefix.rpartition("/")
        if directory_part:
            try:
                validate_key(directory_part)
            except InvalidKeyError:
                return iter(())
            directory = self._path(directory_part)
            if not os.path.isdir(directory) or not self._is_inside(directory):
                return iter(())
            return self._walk(directory, directory_part + "/", name_prefix, after)
        return self._walk(self.root, "", name_prefix, after)

    def _walk(self, directory: str, key_prefix: str, name_prefix: str, after: Optional[str]) -> Iterator[DataItemABC]:
        try:
            with os.scandir(directory) as scan:
                entries = []
                for entry in scan:
                    name = entry.name
                    if not name.startswith(name_prefix):
                        continue
                    if not key_prefix and name.lower() == RESERVED_SEGMENT:
                        continue
                    is_dir = entry.is_dir(follow_symlinks=False)
                    entries.append((name + "/" if is_dir else name, is_dir, entry))
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError:
            with map_os_errors(key_prefix, self.name):
                raise
        entries.sort(key=lambda e: e[0])
        for sort_name, is_dir, entry in entries:
            key = key_prefix + sort_name
            if is_dir:
                # Every key below starts with key ('name/'): skip subtrees wholly <= after.
                if after is None or key > after or after.startswith(key):
                    yield from self._walk(entry.path, key, "", after)
                continue
            if after is not None and key <= after:
                continue
            item = self._item_for_entry(key, entry)
            if item is not None:
                yield item

    def _item_for_entry(self, key: str, entry: os.DirEntry) -> Optional[DirectoryDataItem]:
        try:
            validate_key(key)
            if entry.is_symlink() and not self._is_inside(entry.path):
                return None
            stat = entry.stat()
        except (InvalidKeyError, OSError):
            return None  # not addressable by a key, or gone since the scan
        if not _is_regular(stat):
            return None
        return DirectoryDataItem(self, key, entry.path, stat)

    # endregion

    # region: sidecars (content type and etag)
    def _sidecar_path(self, key: str) -> str:
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return os.path.join(self._sidecar_dir, digest[:2], digest + ".json")

    def _read_sidecar(self, key: str) -> Optional[dict]:
        try:
            with open(self._sidecar_path(key), "rb") as file:
                sidecar = json.loads(file.read())
        except (OSError, ValueError):
            return None
        if not isinstance(sidecar, dict) or sidecar.get("key") != key:
            return None
        return sidecar

    def _write_sidecar(self, item: DirectoryDataItem) -> None:
        size, mtime_ns, ino = item.fingerprint
        data = json.dumps(
            {
                "key": item.key,
                "content_type": item.content_type,
                "etag": item.etag,
                "size": size,
                "mtime_ns": mtime_ns,
                "ino": ino,
            }
        ).encode("utf-8")
        path = self._sidecar_path(item.key)
        with map_os_errors(item.key, self.name):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd, temp_path = tempfile.mkstemp(dir=self._temp_dir, prefix="m-")
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(data)
                os.replace(temp_path, path)
            except BaseException:
                _unlink_quietly(temp_path)
                raise

    def _get_content_meta(self, item: DirectoryDataItem) -> Tuple[str, str]:
        """(content_type, etag) for an item, repairing a stale or missing sidecar."""
        sidecar = self._read_sidecar(item.key)
        content_type = (sidecar or {}).get("content_type") or guess_content_type(item.key)
        fingerprint = list(item.fingerprint)
        if sidecar and [sidecar.get(k) for k in ("size", "mtime_ns", "ino")] == fingerprint:
            return content_type, sidecar["etag"]
        # The file was written by someone else (or the sidecar lost): hash it once.
        digest = hashlib.sha256()
        with item._open() as file:
            buffer = bytearray(HASH_BUFFER_SIZE)
            view = memoryview(buffer)
            while True:
                count = file.readinto(view)
                if not count:
                    break
                digest.update(view[:count])
        item._content_type, item._etag = content_type, digest.hexdigest()
        try:
            self._write_sidecar(item)
        except Exception:  # pylint: disable=broad-except
            pass  # a read must not fail because the repair could not be saved
        return content_type, item._etag

    # endregion

    # region: writing
    def _create_writer(self, key: str, content_type: str) -> DataWriterABC:
        return DirectoryDataWriter(self, key, content_type)

    def _publish(self, temp_path: str, key: str) -> None:
        path = self._check_writable(key)
        parent = os.path.dirname(path)
        for attempt in range(3):
            os.makedirs(parent, exist_ok=True)
            if not self._is_inside(parent, allow_root=True):
                raise InvalidKeyError("resolves_outside_root", key=key, store_name=self.name)
            try:
                os.replace(temp_path, path)
                break
            except FileNotFoundError:
                # A concurrent delete pruned the empty parent between makedirs and rename.
                if attempt == 2 or not os.path.exists(temp_path):
                    raise
        if self.fsync:
            _fsync_directory(parent)

    def _copy_native(self, source_store, source_item, key, content_type):
        if not isinstance(source_store, DirectoryDataStore):
            return None
        source_path = source_store._checked_path(source_item.key)
        etag = source_item.etag
        self._check_writable(key)
        with map_os_errors(key, self.name):
            fd, temp_path = tempfile.mkstemp(dir=self._temp_dir, prefix="c-")
            os.close(fd)
            try:
                source_fd = os.open(source_path, os.O_RDONLY)
                try:
                    stat = os.fstat(source_fd)
                    if (stat.st_size, stat.st_mtime_ns, stat.st_ino) != source_item.fingerprint:
                        raise ContentChangedError("item_replaced", key=source_item.key)
                    max_size = self._meta.max_item_size
                    if max_size is not None and stat.st_size > max_size:
                        raise ItemTooLargeError(f"more_than_{max_size}_bytes", key=key)
                    target_fd = os.open(temp_path, os.O_WRONLY)
                    try:
                        _copy_file(source_fd, target_fd, stat.st_size)
                        if self.fsync:
                            os.fsync(target_fd)
                        stat = os.fstat(target_fd)
                    finally:
                        os.close(target_fd)
                finally:
                    os.close(source_fd)
                item = DirectoryDataItem(self, key, self._path(key), stat, content_type, etag)
                self._write_sidecar(item)
                self._publish(temp_path, key)
            except BaseException:
                _unlink_quietly(temp_path)
                raise
        return item

    # endregion

    # region: deleting
    def _delete(self, key: str, item: Optional[DataItemABC]) -> bool:
        path = self._path(key)
        if not self._is_inside(path):
            return False
        try:
            stat = os.stat(path)
            if not _is_regular(stat):
                return False
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError:
            with map_os_errors(key, self.name):
                raise
        sidecar = self._read_sidecar(key)
        if sidecar and sidecar.get("ino") == stat.st_ino:
            _unlink_quietly(self._sidecar_path(key))
        self._prune_empty_parents(os.path.dirname(path))
        return True

    def _prune_empty_parents(self, directory: str) -> None:
        while directory != self.root and directory.startswith(self.root + os.sep):
            try:
                os.rmdir(directory)
            except OSError:
                return
            directory = os.path.dirname(directory)

    # endregion

    def _remove_stale_temp_files(self) -> None:
        cutoff = time.time() - STALE_TEMP_SECONDS
        try:
            with os.scandir(self._temp_dir) as scan:
                for entry in scan:
                    try:
                        if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                            os.unlink(entry.path)
                    except OSError:
                        pass
        except OSError:
            pass


def _is_regular(stat: os.stat_result) -> bool:
    return stat_module.S_ISREG(stat.st_mode)


def _copy_file(source_fd: int, target_fd: int, size: int) -> None:
    """Copy in the kernel (copy_file_range, reflinks where the filesystem has them)."""
    copied = 0
    copy_file_range = getattr(os, "copy_file_range", None)
    while copied < size and copy_file_range is not None:
        try:
            count = copy_file_range(source_fd, target_fd, size - copied, copied, copied)
        except OSError:
            break  # e.g. EXDEV on old kernels, or a filesystem without support
        if count == 0:
            break
        copied += count
    if copied < size:
        os.lseek(source_fd, copied, os.SEEK_SET)
        os.lseek(target_fd, copied, os.SEEK_SET)
        with os.fdopen(os.dup(source_fd), "rb") as source, os.fdopen(os.dup(target_fd), "wb") as target:
            shutil.copyfileobj(source, target, HASH_BUFFER_SIZE)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
