"""Writes to a temp file in the store's filesystem, then publishes with one atomic rename."""

import os
import tempfile
from typing import TYPE_CHECKING

from persisty_data.data_writer_abc import Buffer, DataWriterABC
from persisty_data.directory.directory_data_item import DirectoryDataItem
from persisty_data.directory.os_errors import map_os_errors

if TYPE_CHECKING:
    from persisty_data.directory.directory_data_store import DirectoryDataStore

WRITE_BUFFER_SIZE = 256 * 1024


class DirectoryDataWriter(DataWriterABC):
    def __init__(self, store: "DirectoryDataStore", key: str, content_type: str):
        super().__init__(key, content_type, store.get_meta().max_item_size)
        self._store = store
        store._check_writable(key)  # fail before any byte is written
        with map_os_errors(key, store.name):
            fd, self._temp_path = tempfile.mkstemp(dir=store._temp_dir, prefix="w-")
            self._file = os.fdopen(fd, "wb", buffering=WRITE_BUFFER_SIZE)

    def _write_chunk(self, data: Buffer) -> None:
        with map_os_errors(self.key, self._store.name):
            self._file.write(data)

    def _commit(self, size: int, etag: str) -> DirectoryDataItem:
        store = self._store
        with map_os_errors(self.key, store.name):
            self._file.flush()
            if store.fsync:
                os.fsync(self._file.fileno())
            stat = os.fstat(self._file.fileno())
            self._file.close()
            item = DirectoryDataItem(store, self.key, store._path(self.key), stat, self.content_type, etag)
            # The sidecar is written first: if we crash before the rename, its fingerprint
            # will not match the old file and the old file's etag is recomputed.
            store._write_sidecar(item)
            store._publish(self._temp_path, self.key)
        return item

    def _abort(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass
        try:
            os.unlink(self._temp_path)
        except FileNotFoundError:
            pass
