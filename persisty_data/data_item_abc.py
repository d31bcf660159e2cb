"""DataItemABC: the metadata of one stored item, and access to its bytes."""

import hashlib
import io
from abc import ABC, abstractmethod
from datetime import datetime
from typing import BinaryIO, Optional, Tuple

from persisty_data.errors import InvalidRangeError
from persisty_data.readers import VerifyingReader, buffered, check_content


class DataItemABC(ABC):
    """
    One item in a data store: its key, size in bytes, content type, etag (SHA-256 hex of
    the content, identical for identical bytes on every backend) and the time its content
    was last written (timezone-aware UTC).

    Items are snapshots: a reader opened on an item returns the content the item describes,
    or raises ContentChangedError if that content has since been replaced or deleted.
    """

    @property
    @abstractmethod
    def key(self) -> str:
        """The item's key (see persisty_data.keys)."""

    @property
    @abstractmethod
    def size(self) -> int:
        """Size of the content in bytes."""

    @property
    @abstractmethod
    def content_type(self) -> str:
        """Content type, e.g. image/png."""

    @property
    @abstractmethod
    def etag(self) -> str:
        """SHA-256 hex digest of the content."""

    @property
    @abstractmethod
    def updated_at(self) -> datetime:
        """When the content was written, timezone-aware UTC."""

    def get_data_reader(self, offset: int = 0, length: Optional[int] = None) -> BinaryIO:
        """
        Open a binary stream over the content, or over length bytes from offset. Bytes
        before offset are not read. The stream is a context manager; close it when done.

        A read of the whole content is checked against the etag as it streams: the read
        that reaches the end raises ContentCorruptedError if the bytes are not the ones
        the item describes. A byte range cannot be checked (there is no hash of a part).

        :raises InvalidRangeError: if offset or length is negative.
        :raises ContentChangedError: if the content was replaced or deleted since this
            item was read.
        :raises ContentCorruptedError: (from a read) if the whole content does not match
            the etag.
        """
        start, end = get_range(self.size, offset, length)
        etag = self.etag if self._is_whole(start, end) else None
        raw = self._open_content(start, end)
        if etag is not None:
            raw = VerifyingReader(raw, self.key, self.size, etag)
        return buffered(raw)

    @abstractmethod
    def _open_content(self, start: int, end: int) -> io.RawIOBase:
        """A raw stream over the bytes [start, end) of the content (already clipped)."""

    def read_bytes(self, offset: int = 0, length: Optional[int] = None) -> bytes:
        """
        Read the content (or a range of it) into memory. Meant for small items. Checked
        like get_data_reader: the whole content must match the etag.
        """
        start, end = get_range(self.size, offset, length)
        etag = self.etag if self._is_whole(start, end) else None
        data = self._read_content(start, end)
        if etag is not None:
            check_content(self.key, self.size, etag, len(data), hashlib.sha256(data))
        return data

    def _read_content(self, start: int, end: int) -> bytes:
        """The bytes [start, end) in memory; backends with a faster way override this."""
        with buffered(self._open_content(start, end)) as reader:
            return reader.read()

    def _is_whole(self, start: int, end: int) -> bool:
        return start == 0 and end == self.size

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(key={self.key!r}, size={self.size}, "
            f"content_type={self.content_type!r}, etag={self.etag!r}, "
            f"updated_at={self.updated_at!r})"
        )


def get_range(size: int, offset: int = 0, length: Optional[int] = None) -> Tuple[int, int]:
    """Clip a requested range to the content: returns (start, end) with end exclusive."""
    if offset < 0 or (length is not None and length < 0):
        raise InvalidRangeError(f"offset={offset}, length={length}")
    start = min(offset, size)
    end = size if length is None else min(size, start + length)
    return start, end
