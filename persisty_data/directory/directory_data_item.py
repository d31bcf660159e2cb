"""An item in a DirectoryDataStore: a file, plus a sidecar with its content type and etag."""

import io
import os
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, BinaryIO, Optional

from persisty_data.data_item_abc import DataItemABC, get_range
from persisty_data.directory.os_errors import map_os_errors
from persisty_data.errors import ContentChangedError
from persisty_data.readers import RangeReader, buffered

if TYPE_CHECKING:
    from persisty_data.directory.directory_data_store import DirectoryDataStore


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


class DirectoryDataItem(DataItemABC):
    """
    Size and updated_at come from the file's stat. Content type and etag are loaded from
    the sidecar only when first used, so listing stays as cheap as a directory scan.
    """

    __slots__ = ("_store", "_key", "_path", "_size", "_mtime_ns", "_ino", "_dev", "_content_type", "_etag")

    def __init__(
        self,
        store: "DirectoryDataStore",
        key: str,
        path: str,
        stat: os.stat_result,
        content_type: Optional[str] = None,
        etag: Optional[str] = None,
    ):
        self._store = store
        self._key = key
        self._path = path
        self._size = stat.st_size
        self._mtime_ns = stat.st_mtime_ns
        self._ino = stat.st_ino
        self._dev = stat.st_dev
        self._content_type = content_type
        self._etag = etag

    @property
    def key(self) -> str:
        return self._key

    @property
    def size(self) -> int:
        return self._size

    @property
    def updated_at(self) -> datetime:
        return _EPOCH + timedelta(microseconds=self._mtime_ns // 1000)

    @property
    def content_type(self) -> str:
        if self._content_type is None:
            self._load_sidecar()
        return self._content_type  # type: ignore[return-value]

    @property
    def etag(self) -> str:
        if self._etag is None:
            self._load_sidecar()
        return self._etag  # type: ignore[return-value]

    @property
    def fingerprint(self) -> tuple:
        return self._size, self._mtime_ns, self._ino

    def _load_sidecar(self) -> None:
        content_type, etag = self._store._get_content_meta(self)
        self._content_type = content_type
        self._etag = etag

    def get_data_reader(self, offset: int = 0, length: Optional[int] = None) -> BinaryIO:
        start, end = get_range(self._size, offset, length)
        raw = self._open()
        try:
            if start:
                raw.seek(start)
        except BaseException:
            raw.close()
            raise
        return buffered(RangeReader(raw, end - start))

    def read_bytes(self, offset: int = 0, length: Optional[int] = None) -> bytes:
        start, end = get_range(self._size, offset, length)
        fd = self._open_fd()
        try:
            parts = []
            while start < end:
                data = os.pread(fd, end - start, start)
                if not data:
                    break  # pragma: no cover - the fingerprint said the file was this long
                parts.append(data)
                start += len(data)
        finally:
            os.close(fd)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _open(self) -> io.FileIO:
        """Open the file, checking it still holds the content this item describes."""
        return io.FileIO(self._open_fd(), "rb", closefd=True)

    def _open_fd(self) -> int:
        """
        A file descriptor on the file this item describes. The item's path was checked
        to lie inside the store's root when the item was made; whatever the path leads
        to now, the descriptor is used only if it is that same file (device and inode),
        unchanged (size and mtime).
        """
        try:
            fd = os.open(self._path, _READ_FLAGS)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ContentChangedError("item_deleted", key=self._key) from None
        except OSError:
            with map_os_errors(self._key):
                raise
        stat = os.fstat(fd)
        if (stat.st_ino, stat.st_dev, stat.st_size, stat.st_mtime_ns) != (
            self._ino,
            self._dev,
            self._size,
            self._mtime_ns,
        ):
            os.close(fd)
            raise ContentChangedError("item_replaced", key=self._key)
        return fd
