"""DataItem: a DataItemABC whose metadata is all known up front (chunk and S3 backends)."""

from abc import ABC
from datetime import datetime, timezone

from persisty_data.data_item_abc import DataItemABC


class DataItem(DataItemABC, ABC):
    """Holds key, size, content_type, etag and updated_at; subclasses add the reader."""

    __slots__ = ("_key", "_size", "_content_type", "_etag", "_updated_at")

    def __init__(self, key: str, size: int, content_type: str, etag: str, updated_at: datetime):
        self._key = key
        self._size = size
        self._content_type = content_type
        self._etag = etag
        if updated_at.tzinfo is None:
            updated_at = updated_at.replace(tzinfo=timezone.utc)
        self._updated_at = updated_at.astimezone(timezone.utc)

    @property
    def key(self) -> str:
        return self._key

    @property
    def size(self) -> int:
        return self._size

    @property
    def content_type(self) -> str:
        return self._content_type

    @property
    def etag(self) -> str:
        return self._etag

    @property
    def updated_at(self) -> datetime:
        return self._updated_at

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DataItemABC):
            return NotImplemented
        return (self.key, self.size, self.content_type, self.etag, self.updated_at) == (
            other.key,
            other.size,
            other.content_type,
            other.etag,
            other.updated_at,
        )

    __hash__ = None  # type: ignore[assignment]
