"""Stores items as files under a root directory; the tree stays browsable."""

import errno
import fcntl
import hashlib
import itertools
import json
import os
import shutil
import stat as stat_module
import struct
import time
from contextlib import contextmanager
from datetime import timedelta
from typing import Iterator, List, Optional, Tuple

from persisty_data.content_types import DEFAULT_CONTENT_TYPE, guess_content_type, resolve_content_type
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
    StorageError,
    UploadExpiredError,
)
from persisty_data.gc_report import GcReport
from persisty_data.keys import MAX_KEY_BYTES, RESERVED_SEGMENT, is_valid_segment, validate_key
from persisty_data.readers import check_content

HASH_BUFFER_SIZE = 1024 * 1024
# write_bytes of at most this many bytes skips the streaming writer: one write, one check.
DIRECT_WRITE_MAX_BYTES = 256 * 1024
# The extended attribute holding an item's content type and etag (where the filesystem has
# them), stamped with the file's mtime and size: b"2", the 32 bytes of the SHA-256, mtime_ns
# and size (little-endian int64 / uint64), then the content type in ASCII (empty for
# application/octet-stream). 49 bytes in the common case, so ext4 keeps it inside the inode
# (room for 56 with 256-byte inodes) instead of giving every file an extra 4 KiB block,
# which costs a block allocation on write and a block free (and discard) on delete.
# Version 1, still read: "1 <size> <mtime_ns> <inode> <sha256 hex> <content type>" in ASCII.
XATTR_NAME = "user.persisty_data"
XATTR_VERSION = b"2"
_XATTR_STAMP = struct.Struct("<qQ")
_XATTR_HEADER_SIZE = 1 + 32 + _XATTR_STAMP.size
_MISSING = (FileNotFoundError, NotADirectoryError)
_SEP = os.sep
_S_ISDIR, _S_ISLNK, _S_ISREG = stat_module.S_ISDIR, stat_module.S_ISLNK, stat_module.S_ISREG
_TEMP_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


class DirectoryDataStore(DataStoreABC):
    """
    Key ``a/b/c.txt`` is the file ``root/a/b/c.txt``. Each file carries its content type
    and etag, stamped with the file's size, mtime and inode so a file changed behind the
    store's back is noticed and its etag recomputed. They are kept in an extended
    attribute of the file itself (``user.persisty_data``), written before the file is
    published, so content and metadata change together. On filesystems without user
    extended attributes (or with ``xattrs=False``) they are kept in small sidecar files
    under ``root/.persisty_data/meta`` (keyed by a hash of the key) instead; sidecars
    written by earlier versions are still read.

    Writes go to ``root/.persisty_data/tmp``, are fsynced (unless fsync=False) and
    published with an atomic rename. In sidecar mode there is one sidecar per file (per
    inode), written before the rename, and a lock file per group of keys under
    ``root/.persisty_data/locks`` serialises publishing a key's file and sidecars across
    threads and processes. Temp files a crash left and sidecars whose file is gone are
    removed by gc() (the store never deletes them by itself).

    No key reaches outside the root: keys are validated, and every path component below
    the root is checked; one that is a symlink must resolve inside the root.
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
        xattrs: Optional[bool] = None,
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
            self._root_prefix = self.root + _SEP
            self._internal_dir = os.path.join(self.root, RESERVED_SEGMENT)
            self._temp_dir = os.path.join(self._internal_dir, "tmp")
            self._sidecar_dir = os.path.join(self._internal_dir, "meta")
            self._lock_dir = os.path.join(self._internal_dir, "locks")
            os.makedirs(self._temp_dir, exist_ok=True)
            os.makedirs(self._sidecar_dir, exist_ok=True)
            os.makedirs(self._lock_dir, exist_ok=True)
        self._temp_prefix = self._temp_dir + _SEP
        self._temp_base = os.urandom(8).hex() + "-"
        self._temp_counter = itertools.count()
        supported = _xattrs_supported(self._temp_dir)
        if xattrs and not supported:
            raise ConfigurationError("filesystem_has_no_user_xattrs", store_name=self.name)
        self.xattrs = supported if xattrs is None else xattrs
        # Sidecars may exist (sidecar mode, or written by an earlier version): deletes
        # then look for one. A fresh store in xattr mode never has any.
        self._sidecars = not self.xattrs or _has_entries(self._sidecar_dir)

    def get_meta(self) -> DataStoreMeta:
        return self._meta

    # region: paths
    def _path(self, key: str) -> str:
        # A valid key has no empty, '.' or '..' segment: the path is the root plus the key.
        return self._root_prefix + (key if _SEP == "/" else key.replace("/", _SEP))

    def _is_inside(self, path: str, allow_root: bool = False) -> bool:
        """True if path resolves (symlinks included) inside the root, outside our own dir."""
        real = os.path.realpath(path)
        if allow_root and real == self.root:
            return True
        inside = real.startswith(self.root + os.sep)
        internal = real == self._internal_dir or real.startswith(self._internal_dir + os.sep)
        return inside and not internal

    def _locate(self, key: str) -> Tuple[str, Optional[os.stat_result], Optional[bool]]:
        """
        (path, stat, blocked) for a valid key. stat is that of the file or directory at
        path (symlinks followed), or None if nothing is there. blocked is True if a file
        stands where the key needs a directory, False if not, None if unknown (the key
        goes through a symlink). Each component below the root is checked with lstat; a
        symlink among them must resolve inside the root.

        :raises InvalidKeyError: if the path resolves outside the root.
        """
        path = self._path(key)
        offset = len(self._root_prefix)
        lstat, start = os.lstat, 0
        while True:
            slash = key.find("/", start)
            try:
                stat = lstat(path if slash < 0 else path[: offset + slash])
            except FileNotFoundError:
                return path, None, False
            except NotADirectoryError:  # pragma: no cover - replaced since the last lstat
                return path, None, True
            except OSError:
                with map_os_errors(key, self.name):
                    raise
            mode = stat.st_mode
            if _S_ISLNK(mode):
                return self._locate_through_link(key)
            if slash < 0:
                return path, stat, False
            if not _S_ISDIR(mode):
                return path, None, True
            start = slash + 1

    def _locate_through_link(self, key: str) -> Tuple[str, Optional[os.stat_result], Optional[bool]]:
        path = self._path(key)
        if not self._is_inside(path):
            raise InvalidKeyError("resolves_outside_root", key=key, store_name=self.name)
        try:
            return path, os.stat(path), False
        except _MISSING:
            return path, None, None
        except OSError:
            with map_os_errors(key, self.name):
                raise

    def _checked_path(self, key: str) -> str:
        """The path for a valid key; refuses a path that resolves outside the root."""
        return self._locate(key)[0]

    def _check_writable(self, key: str) -> str:
        """Refuse keys that escape the root or collide with a directory or a file."""
        path, stat, blocked = self._locate(key)
        if stat is not None and stat_module.S_ISDIR(stat.st_mode):
            raise KeyConflictError("a_directory_has_this_key", key=key, store_name=self.name)
        if blocked is None:  # through a symlink: look at the real parents
            parent = os.path.dirname(path)
            while parent != self.root and not blocked:
                if os.path.lexists(parent):
                    blocked = not os.path.isdir(parent)
                    break
                parent = os.path.dirname(parent)
        if blocked:
            raise KeyConflictError("a_file_is_in_the_way", key=key, store_name=self.name)
        return path

    # endregion

    # region: reading
    def _read(self, key: str) -> Optional[DirectoryDataItem]:
        for attempt in range(5):
            try:
                path, stat, _ = self._locate(key)
            except InvalidKeyError:
                return None
            if stat is None or not _S_ISREG(stat.st_mode):
                return None
            if self.xattrs:  # the common case, inline: a valid, current xattr
                try:
                    value = os.getxattr(path, XATTR_NAME)
                except OSError:
                    value = b""
                if value[:1] == XATTR_VERSION and len(value) >= _XATTR_HEADER_SIZE:
                    mtime_ns, size = _XATTR_STAMP.unpack_from(value, 33)
                    stored_type = value[_XATTR_HEADER_SIZE:]
                    if size == stat.st_size and mtime_ns == stat.st_mtime_ns and stored_type.isascii():
                        content_type = stored_type.decode("ascii") or DEFAULT_CONTENT_TYPE
                        return DirectoryDataItem(self, key, path, stat, content_type, value[1:33].hex())
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
                    if not is_valid_segment(name):
                        continue  # not addressable by a key
                    is_dir = entry.is_dir(follow_symlinks=False)
                    entries.append((name + "/" if is_dir else name, is_dir, entry))
        except _MISSING:
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
        if len(key) > MAX_KEY_BYTES // 4 and len(key.encode("utf-8")) > MAX_KEY_BYTES:
            return None  # too long to be a key
        try:
            if entry.is_symlink() and not self._is_inside(entry.path):
                return None
            stat = entry.stat()
        except OSError:
            return None  # gone since the scan
        if not _is_regular(stat):
            return None
        return DirectoryDataItem(self, key, entry.path, stat)

    # endregion

    # region: content type and etag (an xattr of the file, else a sidecar)
    def _sidecar_path(self, key: str, ino: Optional[int] = None) -> str:
        """
        The sidecar of the file with inode ino under key: one per inode, so a sidecar
        always describes the file it was written for, however writers race. Without ino,
        the one sidecar per key that earlier versions wrote.
        """
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        name = digest + ".json" if ino is None else f"{digest}.{ino}.json"
        return os.path.join(self._sidecar_dir, digest[:2], name)

    def _read_sidecar(self, key: str, ino: int) -> Optional[dict]:
        """The metadata recorded for the file with inode ino under key, if any."""
        for path in (self._sidecar_path(key, ino), self._sidecar_path(key)):
            try:
                with open(path, "rb") as file:
                    sidecar = json.loads(file.read())
            except (OSError, ValueError):
                continue
            if isinstance(sidecar, dict) and sidecar.get("key") == key and sidecar.get("ino") == ino:
                return sidecar
        return None

    @contextmanager
    def _sidecar_lock(self, key: str) -> Iterator[None]:
        """
        Excludes other threads and processes publishing, deleting or repairing key (and
        the keys sharing its lock file) in sidecar mode: the sidecars of a key change
        together with its file.
        """
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        path = os.path.join(self._lock_dir, digest[:2])
        with map_os_errors(key, self.name):
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _read_xattr(self, path: str) -> Optional[Tuple[int, int, Optional[int], str, str]]:
        """(size, mtime_ns, inode or None, etag, content type) from the file's xattr, if valid."""
        try:
            value = os.getxattr(path, XATTR_NAME)
        except OSError:
            return None
        return _parse_xattr(value)

    def _write_xattr(self, fd_or_path, item: DirectoryDataItem) -> None:
        os.setxattr(fd_or_path, XATTR_NAME, _xattr_value(item._mtime_ns, item._size, item.etag, item.content_type))

    def _write_sidecar(self, item: DirectoryDataItem) -> str:
        """Write the sidecar of item's file (by its inode); returns its path."""
        size, mtime_ns, ino = item.fingerprint
        meta = {"key": item.key, "content_type": item.content_type, "etag": item.etag}
        data = json.dumps({**meta, "size": size, "mtime_ns": mtime_ns, "ino": ino}).encode("utf-8")
        path = self._sidecar_path(item.key, ino)
        with map_os_errors(item.key, self.name):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd, temp_path = self._new_temp_file("m-")
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(data)
                    if self.fsync:
                        file.flush()
                        os.fsync(file.fileno())
                os.replace(temp_path, path)
            except BaseException:
                _unlink_quietly(temp_path)
                raise
        return path

    def _remove_other_sidecars(self, key: str, ino: Optional[int]) -> None:
        """Remove key's sidecars except that of inode ino (call with the key's lock held)."""
        keep = self._sidecar_path(key, ino) if ino is not None else None
        digest_path = self._sidecar_path(key)[: -len(".json")]
        directory, digest = os.path.split(digest_path)
        try:
            names = os.listdir(directory)
        except OSError:
            return
        for name in names:
            path = os.path.join(directory, name)
            if name.startswith(digest + ".") and path != keep:
                _unlink_quietly(path)

    def _get_content_meta(self, item: DirectoryDataItem) -> Tuple[str, str]:
        """(content_type, etag) for an item, repairing stale or missing metadata."""
        fingerprint = item.fingerprint
        content_type = None
        if self.xattrs:
            meta = self._read_xattr(item._path)
            if meta is not None:
                # The xattr belongs to the inode: size and mtime tell whether it still
                # describes the content (version 1 also recorded the inode).
                if meta[0] == item._size and meta[1] == item._mtime_ns and meta[2] in (None, item._ino):
                    return meta[4] or guess_content_type(item.key), meta[3]
                content_type = meta[4]
        if self._sidecars or not self.xattrs:
            sidecar = self._read_sidecar(item.key, item._ino)
            if sidecar:
                etag = sidecar.get("etag")
                if (sidecar.get("size"), sidecar.get("mtime_ns"), sidecar.get("ino")) == fingerprint and isinstance(
                    etag, str
                ):
                    return sidecar.get("content_type") or guess_content_type(item.key), etag
                content_type = content_type or sidecar.get("content_type")
        content_type = content_type or guess_content_type(item.key)
        # The file was written by someone else (or its metadata lost): hash it once.
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
            if self.xattrs:
                self._write_xattr(item._path, item)
            else:
                self._repair_sidecar(item)
        except Exception:  # pylint: disable=broad-except
            pass  # a read must not fail because the repair could not be saved
        return content_type, item._etag

    def _repair_sidecar(self, item: DirectoryDataItem) -> None:
        with self._sidecar_lock(item.key):
            try:
                current = os.stat(item._path).st_ino
            except OSError:
                return
            if current == item._ino:  # still the file we hashed: not replaced meanwhile
                self._write_sidecar(item)

    def _save_content_meta(self, fd: int, item: DirectoryDataItem) -> None:
        """
        Attach an item's metadata to its temp file (fd), before it is published. (In
        sidecar mode, _publish writes the sidecar, under the key's lock.)
        """
        if self.xattrs:
            self._write_xattr(fd, item)

    # endregion

    # region: writing
    def _create_writer(self, key: str, content_type: str) -> DataWriterABC:
        return DirectoryDataWriter(self, key, content_type)

    def write_bytes(self, key: str, data: bytes, content_type: Optional[str] = None) -> DataItemABC:
        if not isinstance(data, (bytes, bytearray)) or len(data) > DIRECT_WRITE_MAX_BYTES:
            return super().write_bytes(key, data, content_type)
        # Small content needs no streaming: hash it, write it in one call, and check the
        # key once, just before the rename that publishes it.
        validate_key(key)
        meta = self._meta
        content_type = resolve_content_type(key, content_type, meta.permitted_content_types)
        size = len(data)
        if meta.max_item_size is not None and size > meta.max_item_size:
            raise ItemTooLargeError(f"more_than_{meta.max_item_size}_bytes", key=key)
        etag = hashlib.sha256(data).hexdigest()
        with map_os_errors(key, self.name):
            fd, temp_path = self._new_temp_file("w-")
            try:
                try:
                    view = memoryview(data)
                    written = os.write(fd, view) if size else 0
                    while written < size:
                        written += os.write(fd, view[written:])
                    stat = os.fstat(fd)
                    if self.xattrs:
                        os.setxattr(fd, XATTR_NAME, _xattr_value(stat.st_mtime_ns, size, etag, content_type))
                    if self.fsync:
                        os.fsync(fd)  # the content and its attribute, in one go
                finally:
                    os.close(fd)
                path = self._publish(temp_path, key, DirectoryDataItem(self, key, "", stat, content_type, etag))
            except BaseException:
                _unlink_quietly(temp_path)
                raise
        return DirectoryDataItem(self, key, path, stat, content_type, etag)

    def _new_temp_file(self, prefix: str) -> Tuple[int, str]:
        """A new, empty temp file (fd, path) in the store's temp directory."""
        while True:
            # A random part drawn once per store, and a counter: no syscall for the name.
            # O_EXCL settles any clash (another process, a fork): draw again and retry.
            path = f"{self._temp_prefix}{prefix}{self._temp_base}{next(self._temp_counter):x}"
            try:
                return os.open(path, _TEMP_FLAGS, 0o666), path
            except FileExistsError:
                self._temp_base = os.urandom(8).hex() + "-"

    def _publish(self, temp_path: str, key: str, item: DirectoryDataItem) -> str:
        """
        Move a finished temp file (whose metadata is item) to key's path (returned),
        creating directories. In sidecar mode the file's sidecar is written first and
        the key's other sidecars removed after, all under the key's lock; a refused
        write leaves no sidecar.
        """
        path = self._check_writable(key)
        if self.xattrs:
            return self._rename_into_place(temp_path, key, path)
        with self._sidecar_lock(key):
            sidecar = self._write_sidecar(item)
            try:
                self._rename_into_place(temp_path, key, path)
            except BaseException:
                _unlink_quietly(sidecar)
                raise
            self._remove_other_sidecars(key, item._ino)
        return path

    def _rename_into_place(self, temp_path: str, key: str, path: str) -> str:
        parent = os.path.dirname(path)
        created: List[str] = []
        for attempt in range(3):
            try:
                os.replace(temp_path, path)
                break
            except FileNotFoundError:
                if not os.path.exists(temp_path):
                    # gc() took it for a dead writer's: the write is lost, as on the other backends.
                    raise UploadExpiredError("collected_as_abandoned", key=key, store_name=self.name) from None
                if attempt == 2:
                    raise
            # The parent is missing (a new directory, or a concurrent delete pruned it).
            created += self._missing_directories(parent)
            os.makedirs(parent, exist_ok=True)
            if not self._is_inside(parent, allow_root=True):
                raise InvalidKeyError("resolves_outside_root", key=key, store_name=self.name)
        if self.fsync:
            _fsync_directory(parent)
            # A directory made for this item is durable once its own parent is synced.
            for directory in sorted({os.path.dirname(d) for d in created} - {parent}, reverse=True):
                _fsync_directory(directory)
        return path

    def _missing_directories(self, directory: str) -> List[str]:
        """directory and those of its ancestors below the root that do not exist yet."""
        missing = []
        while len(directory) >= len(self._root_prefix) and not os.path.lexists(directory):
            missing.append(directory)
            directory = os.path.dirname(directory)
        return missing

    def _copy_native(self, source_store, source_item, key, content_type):
        if not isinstance(source_store, DirectoryDataStore):
            return None
        source_path = source_store._checked_path(source_item.key)
        etag = source_item.etag
        self._check_writable(key)
        with map_os_errors(key, self.name):
            target_fd, temp_path = self._new_temp_file("c-")
            try:
                try:
                    source_fd = os.open(source_path, os.O_RDONLY)
                    try:
                        stat = os.fstat(source_fd)
                        if (stat.st_size, stat.st_mtime_ns, stat.st_ino) != source_item.fingerprint:
                            raise ContentChangedError("item_replaced", key=source_item.key)
                        max_size = self._meta.max_item_size
                        if max_size is not None and stat.st_size > max_size:
                            raise ItemTooLargeError(f"more_than_{max_size}_bytes", key=key)
                        _copy_file(source_fd, target_fd, stat.st_size)
                        # The kernel copies without looking: check what is about to be published.
                        _check_file(target_fd, source_item.key, stat.st_size, etag)
                        stat = os.fstat(target_fd)
                    finally:
                        os.close(source_fd)
                    item = DirectoryDataItem(self, key, self._path(key), stat, content_type, etag)
                    self._save_content_meta(target_fd, item)
                    if self.fsync:
                        os.fsync(target_fd)
                finally:
                    os.close(target_fd)
                self._publish(temp_path, key, item)
            except BaseException:
                _unlink_quietly(temp_path)
                raise
        return item

    # endregion

    # region: deleting
    def _delete(self, key: str, item: Optional[DataItemABC]) -> bool:
        try:
            path, stat, _ = self._locate(key)
        except InvalidKeyError:
            return False
        if stat is None or not _S_ISREG(stat.st_mode):
            return False
        if self._sidecars:
            with self._sidecar_lock(key):
                if not self._unlink_item(key, path):
                    return False
                self._remove_other_sidecars(key, None)
        elif not self._unlink_item(key, path):
            return False
        if "/" in key:
            self._prune_empty_parents(path)
        return True

    def _unlink_item(self, key: str, path: str) -> bool:
        try:
            os.unlink(path)
        except _MISSING:
            return False
        except OSError:
            with map_os_errors(key, self.name):
                raise
        return True

    def _prune_empty_parents(self, path: str) -> None:
        """Remove the directories above path, up to the root, that are now empty."""
        prefix = self._root_prefix
        directory = path[: path.rfind(_SEP)]
        while len(directory) > len(prefix) and directory.startswith(prefix):
            try:
                os.rmdir(directory)
            except OSError:
                return
            directory = directory[: directory.rfind(_SEP)]

    # endregion

    # region: garbage collection
    def _gc(self, older_than: timedelta, report: GcReport) -> None:
        """Temp files of writes that never finished, and sidecars whose file is gone."""
        cutoff = time.time() - older_than.total_seconds()
        for entry in _old_files(self._temp_dir, cutoff):
            if report.dry_run or _unlink_quietly(entry.path):
                report.add("temp_file", self._internal_name(entry.path), entry.stat(follow_symlinks=False).st_size)
        try:
            shards = sorted(os.listdir(self._sidecar_dir))
        except OSError:
            shards = []
        for shard in shards:
            for entry in _old_files(os.path.join(self._sidecar_dir, shard), cutoff):
                self._collect_sidecar(entry, report)

    def _collect_sidecar(self, entry: os.DirEntry, report: GcReport) -> None:
        size = entry.stat(follow_symlinks=False).st_size
        try:
            with open(entry.path, "rb") as file:
                sidecar = json.loads(file.read())
            key, ino = sidecar["key"], sidecar["ino"]
            validate_key(key)
        except (OSError, ValueError, TypeError, KeyError, InvalidKeyError):
            key = None  # not ours to read, or for no valid key: nothing it can describe
        if key is None:
            if report.dry_run or _unlink_quietly(entry.path):
                report.add("sidecar", self._internal_name(entry.path), size)
            return
        with self._sidecar_lock(key):
            if self._describes_current_file(key, ino):
                return
            if report.dry_run or _unlink_quietly(entry.path):
                report.add("sidecar", self._internal_name(entry.path), size, key=key)

    def _describes_current_file(self, key: str, ino: object) -> bool:
        try:
            _, stat, _ = self._locate(key)
        except (InvalidKeyError, StorageError):
            return False
        return stat is not None and _S_ISREG(stat.st_mode) and stat.st_ino == ino

    def _internal_name(self, path: str) -> str:
        return os.path.relpath(path, self.root).replace(os.sep, "/")

    # endregion


def _old_files(directory: str, cutoff: float) -> List[os.DirEntry]:
    """The regular files in directory last modified before cutoff (a time.time())."""
    try:
        with os.scandir(directory) as scan:
            entries = list(scan)
    except OSError:
        return []
    old = []
    for entry in entries:
        try:
            stat = entry.stat(follow_symlinks=False)
        except OSError:
            continue  # gone since the scan
        if _S_ISREG(stat.st_mode) and stat.st_mtime < cutoff:
            old.append(entry)
    return sorted(old, key=lambda e: e.name)


def _is_regular(stat: os.stat_result) -> bool:
    return stat_module.S_ISREG(stat.st_mode)


def _xattr_value(mtime_ns: int, size: int, etag: str, content_type: str) -> bytes:
    if content_type == DEFAULT_CONTENT_TYPE:
        content_type = ""
    return XATTR_VERSION + bytes.fromhex(etag) + _XATTR_STAMP.pack(mtime_ns, size) + content_type.encode("ascii")


def _parse_xattr(value: bytes) -> Optional[Tuple[int, int, Optional[int], str, str]]:
    """(size, mtime_ns, inode or None, etag, content type) from an xattr value, None if invalid."""
    try:
        if value[:1] == XATTR_VERSION and len(value) >= _XATTR_HEADER_SIZE:
            mtime_ns, size = _XATTR_STAMP.unpack_from(value, 33)
            content_type = value[_XATTR_HEADER_SIZE:].decode("ascii") or DEFAULT_CONTENT_TYPE
            return size, mtime_ns, None, value[1:33].hex(), content_type
        version, size, mtime_ns, ino, etag, content_type = value.decode("ascii").split(" ", 5)
        if version != "1":
            return None
        return int(size), int(mtime_ns), int(ino), etag, content_type
    except ValueError:  # also UnicodeDecodeError
        return None


def _xattrs_supported(directory: str) -> bool:
    """True if files in directory take user extended attributes."""
    if not hasattr(os, "setxattr"):
        return False
    path = os.path.join(directory, "x-probe-" + os.urandom(8).hex())
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return False
    try:
        os.setxattr(fd, XATTR_NAME, b"probe")
        return os.getxattr(fd, XATTR_NAME) == b"probe"
    except OSError as exc:
        if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM, errno.EACCES, errno.ENOSPC, errno.E2BIG):
            raise
        return False
    finally:
        os.close(fd)
        _unlink_quietly(path)


def _has_entries(directory: str) -> bool:
    try:
        with os.scandir(directory) as scan:
            return next(scan, None) is not None
    except OSError:
        return True


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


def _check_file(fd: int, key: str, size: int, etag: str) -> None:
    """Raise ContentCorruptedError unless the file's first size bytes (and no more) hash to etag."""
    digest = hashlib.sha256()
    count = 0
    while True:
        data = os.pread(fd, HASH_BUFFER_SIZE, count)
        if not data:
            break
        digest.update(data)
        count += len(data)
    check_content(key, size, etag, count, digest)


def _unlink_quietly(path: str) -> bool:
    """Unlink path; False if it could not be (already gone, or not permitted)."""
    try:
        os.unlink(path)
    except OSError:
        return False
    return True


def _fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
