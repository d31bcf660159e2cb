"""DataItemABC: the metadata of one stored item, and access to its bytes."""

from abc import ABC, abstractmethod
from datetime import datetime
from typing import BinaryIO, Optional, Tuple

from persisty_data.errors import InvalidRangeError


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

    @abstractmethod
    def get_data_reader(self, offset: int = 0, length: Optional[int] = None) -> BinaryIO:
        """
        Open a binary stream over the content, or over length bytes from offset. Bytes
        before offset are not read. The stream is a context manager; close it when done.

        :raises InvalidRangeError: if offset or length is negative.
        :raises ContentChangedError: if the content was replaced or deleted since this
            item was read.
        """

    def read_bytes(self, offset: int = 0, length: Optional[int] = None) -> bytes:
        """Read the content (or a range of it) into memory. Meant for small items."""
        with self.get_data_reader(offset, length) as reader:
            return reader.read()

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
