"""Writes fixed-size chunks under a fresh upload id, then points the item row at them."""

import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, List, Optional

from persisty.batch_edit import BatchEdit

from persisty_data.chunk.chunk_data_item import ChunkDataItem
from persisty_data.chunk.chunk_metas import LEASE_RENEW_SECONDS
from persisty_data.chunk.store_errors import map_store_errors
from persisty_data.data_writer_abc import Buffer, DataWriterABC
from persisty_data.errors import StorageError

if TYPE_CHECKING:
    from persisty_data.chunk.chunk_data_store import ChunkDataStore


class ChunkDataWriter(DataWriterABC):
    def __init__(self, store: "ChunkDataStore", key: str, content_type: str):
        super().__init__(key, content_type, store.get_meta().max_item_size, store.chunk_size)
        self._store = store
        self.upload_id = uuid.uuid4().hex
        self._created_at = store._now()
        self._pending: List[bytes] = []
        self._parts_written = 0
        # When the lease was stored or last renewed (None: nothing stored yet).
        self._lease_renewed: Optional[datetime] = None

    def _write_chunk(self, data: Buffer) -> None:
        # Flush before adding: the last batch is then still pending at close, and goes to
        # the store in the same transaction as the item row.
        if len(self._pending) >= self._store.write_batch_chunks:
            self._flush()
        self._pending.append(bytes(data))

    def _take_pending(self) -> List:
        """The pending chunks as rows, counted as written (so an abort cleans them up too)."""
        chunk_class = self._store._chunk_class
        rows = [
            chunk_class(
                upload_id=self.upload_id,
                part_number=self._parts_written + index,
                item_key=self.key,
                created_at=self._created_at,
                content=content,
            )
            for index, content in enumerate(self._pending)
        ]
        self._parts_written += len(rows)
        self._pending = []
        return rows

    def _flush(self) -> None:
        if not self._pending:
            return
        store = self._store
        rows = self._take_pending()
        if self._lease_renewed is None:
            # The lease goes with the first chunks: nothing of this upload is stored unleased.
            self._lease_renewed = store._now()
            rows.append(store._lease_row(self.upload_id, self.key, self._lease_renewed))
        elif (store._now() - self._lease_renewed).total_seconds() >= LEASE_RENEW_SECONDS:
            self._lease_renewed = store._renew_lease(self.upload_id, self.key)
        edits = [BatchEdit(create_item=row) for row in rows]
        with map_store_errors(self.key, store.name):
            results = store._chunk_store.edit_batch(edits)
        failed = next((r for r in results if not r.success), None)
        if failed is not None:
            raise StorageError(f"chunk_write_failed:{failed.code}", key=self.key, store_name=store.name)

    def _prepare_commit(self) -> None:
        # While the last chunk is still being hashed, store it in its own transaction
        # (the database works without the GIL): the item row's transaction is then tiny.
        # Small items, hashed already, keep chunks and item row in one transaction.
        if self._hash_pending():
            self._flush()

    def _commit(self, size: int, etag: str) -> ChunkDataItem:
        # The last chunks go to the store with the item row: one transaction where it can.
        pending = self._take_pending()
        item = ChunkDataItem(
            self._store,
            self.key,
            size,
            self.content_type,
            etag,
            # Whole seconds: what persisty's SQL stores return, so every read agrees.
            datetime.now(timezone.utc).replace(microsecond=0),
            self.upload_id,
            self._store.chunk_size,
        )
        self._store._publish(item, self._parts_written, pending, leased=self._lease_renewed is not None)
        return item

    def _abort(self) -> None:
        self._pending = []
        self._store._delete_chunks(self.upload_id, self._parts_written, self.key, quiet=True)
        if self._lease_renewed is not None:
            self._store._drop_lease(self.upload_id, self.key)
