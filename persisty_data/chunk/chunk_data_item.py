"""An item in a ChunkDataStore: metadata from the item row, content from its chunks."""

import io
from datetime import datetime
from typing import TYPE_CHECKING

from persisty_data.data_item import DataItem
from persisty_data.readers import IterReader

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

    def _open_content(self, start: int, end: int) -> io.RawIOBase:
        return IterReader(self._store._iter_content(self, start, end))
