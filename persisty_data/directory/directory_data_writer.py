"""Writes to a temp file in the store's filesystem, then publishes with one atomic rename."""

import os
from concurrent.futures import Future
from typing import TYPE_CHECKING, Optional

from persisty_data.data_writer_abc import Buffer, DataWriterABC
from persisty_data.directory.directory_data_item import DirectoryDataItem
from persisty_data.directory.os_errors import map_os_errors
from persisty_data.lazy_thread_pool import LazyThreadPool

if TYPE_CHECKING:
    from persisty_data.directory.directory_data_store import DirectoryDataStore

# Small writes are gathered up to this; larger ones go straight to the file.
WRITE_BUFFER_SIZE = 64 * 1024
# With fsync, a large write asks the disk to start writing every this many bytes (in the
# background), so the disk works while the content still streams in and the final fsync
# has little left to do.
EARLY_FLUSH_BYTES = 16 * 1024 * 1024
_flush_pool = LazyThreadPool(4, "persisty-data-flush")


class DirectoryDataWriter(DataWriterABC):
    def __init__(self, store: "DirectoryDataStore", key: str, content_type: str):
        super().__init__(key, content_type, store.get_meta().max_item_size)
        self._store = store
        self._path = store._check_writable(key)  # fail before any byte is written
        with map_os_errors(key, store.name):
            fd, self._temp_path = store._new_temp_file("w-")
            self._file = os.fdopen(fd, "wb", buffering=WRITE_BUFFER_SIZE)
        self._unflushed = 0
        self._flushing: Optional[Future] = None

    def _write_chunk(self, data: Buffer) -> None:
        with map_os_errors(self.key, self._store.name):
            self._file.write(data)
            if self._store.fsync:
                self._unflushed += len(data)
                if self._unflushed >= EARLY_FLUSH_BYTES and (self._flushing is None or self._flushing.done()):
                    self._wait_for_flush()  # (done: only reports its error)
                    self._file.flush()
                    self._flushing = _flush_pool.get().submit(os.fdatasync, self._file.fileno())
                    self._unflushed = 0

    def _wait_for_flush(self) -> None:
        flushing, self._flushing = self._flushing, None
        if flushing is not None:
            flushing.result()

    def _commit(self, size: int, etag: str) -> DirectoryDataItem:
        store = self._store
        with map_os_errors(self.key, store.name):
            self._wait_for_flush()
            file = self._file
            file.flush()
            fd = file.fileno()
            stat = os.fstat(fd)
            item = DirectoryDataItem(store, self.key, self._path, stat, self.content_type, etag)
            # Content type and etag go with the temp file (or, as a sidecar, just before the
            # rename): if we crash before it, the old file and its metadata stay as they were.
            # The fsync after the attribute makes both durable in one go.
            store._save_content_meta(fd, item)
            if store.fsync:
                os.fsync(fd)
            file.close()
            store._publish(self._temp_path, self.key, item)
        return item

    def _abort(self) -> None:
        try:
            self._wait_for_flush()  # the descriptor must outlive the background flush
        except OSError:
            pass
        try:
            self._file.close()
        except OSError:
            pass
        try:
            os.unlink(self._temp_path)
        except FileNotFoundError:
            pass
