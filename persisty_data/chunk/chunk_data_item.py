"""An item in a ChunkDataStore: metadata from the item row, content from its chunks."""

from datetime import datetime
from typing import TYPE_CHECKING, BinaryIO, Optional

from persisty_data.data_item import DataItem
from persisty_data.data_item_abc import get_range
from persisty_data.readers import IterReader, buffered

if TYPE_CHECKING:
    from persisty_data.chunk.chunk_data_store import ChunkDataStore


class ChunkDataItem(DataItem):
    __slots__ = ("upload_id", "chunk_size", "_store")

    def __init__(
        self,
        store: "ChunkDataStore",
        key: str,
        size: int,
        content_type: str,
        etag: str,
        updated_at: datetime,
        upload_id: str,
        chunk_size: int,
    ):
        super().__init__(key, size, content_type, etag, updated_at)
        self._store = store
        self.upload_id = upload_id
        self.chunk_size = chunk_size

    def get_data_reader(self, offset: int = 0, length: Optional[int] = None) -> BinaryIO:
        start, end = get_range(self.size, offset, length)
        pieces = self._store._iter_content(self, start, end)
        return buffered(IterReader(pieces))
