"""DataWriterABC: the streaming writer every backend uses to publish new content."""

import hashlib
import os
from abc import ABC, abstractmethod
from concurrent.futures import Future
from types import TracebackType
from typing import Optional, Type, Union

from persisty_data.data_item_abc import DataItemABC
from persisty_data.errors import ItemTooLargeError
from persisty_data.lazy_thread_pool import LazyThreadPool

Buffer = Union[bytes, bytearray, memoryview]

# hashlib releases the GIL on buffers this large, so hashing runs on another core while
# the backend stores the same bytes: a write costs max(hash, store), not their sum.
PARALLEL_HASH_MIN_BYTES = 256 * 1024
_hash_pool = LazyThreadPool(os.cpu_count() or 2, "persisty-data-hash")


def _is_immutable(view: memoryview) -> bool:
    """True if nobody can change the bytes behind view (a view of a bytes object)."""
    return view.readonly and isinstance(view.obj, bytes)


class DataWriterABC(ABC):
    """
    A binary writer for one key. Bytes written are counted and hashed (SHA-256) as they
    stream through; nothing becomes visible until close() publishes the new content in
    one step. Leaving the ``with`` block by an exception, calling abort(), or exceeding the
    store's max item size discards everything written and leaves the previous content.

    When chunk_size is set, the backend receives the content through _write_chunk in
    pieces of exactly chunk_size bytes (the last may be shorter); otherwise every write
    is passed straight through.

    Backends implement _write_chunk, _commit and _abort. The base class guarantees that
    _commit or _abort is called exactly once.
    """

    def __init__(
        self,
        key: str,
        content_type: str,
        max_item_size: Optional[int] = None,
        chunk_size: Optional[int] = None,
    ):
        self.key = key
        self.content_type = content_type
        self.max_item_size = max_item_size
        self.chunk_size = chunk_size
        self.item: Optional[DataItemABC] = None
        self._hash = hashlib.sha256()
        self._size = 0
        self._buffer = bytearray()
        self._state = "open"
        self._hashing: Optional[Future] = None  # hashing of immutable bytes, finished lazily

    # region: file-like API
    def write(self, data: Buffer) -> int:
        """Write bytes; returns how many. :raises ItemTooLargeError: past the size limit."""
        if self._state != "open":
            raise ValueError(f"writer_is_{self._state}")
        view = data if isinstance(data, memoryview) else memoryview(data)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
        length = len(view)
        if not length:
            return 0
        if self.max_item_size is not None and self._size + length > self.max_item_size:
            self.abort()
            raise ItemTooLargeError(f"more_than_{self.max_item_size}_bytes", key=self.key)
        if self.chunk_size:
            # The chunks handed to the backend are immutable copies: they are hashed (see
            # _emit_chunk), so this returns without waiting for the hash.
            self._guard(self._write_bytes, view)
            self._size += length
            return length
        self._finish_hashing()
        if length >= PARALLEL_HASH_MIN_BYTES:
            hashing = _hash_pool.get().submit(self._hash.update, view)
            try:
                self._guard(self._write_bytes, view)
            finally:
                if _is_immutable(view):
                    self._hashing = hashing  # nothing can change these bytes: finish later
                else:
                    hashing.result()  # the caller may reuse its buffer once write returns
        else:
            self._guard(self._write_bytes, view)
            self._hash.update(view)
        self._size += length
        return length

    def _finish_hashing(self) -> None:
        hashing, self._hashing = self._hashing, None
        if hashing is not None:
            hashing.result()

    def writable(self) -> bool:
        return self._state == "open"

    def tell(self) -> int:
        return self._size

    def flush(self) -> None:  # noqa: B027 - a real method: nothing to flush before close
        """Nothing to do: content is only published by close()."""

    @property
    def closed(self) -> bool:
        return self._state != "open"

    def close(self) -> None:
        """Publish the content written. Does nothing if already closed or aborted."""
        if self._state != "open":
            return
        if self._buffer:
            self._guard(self._emit_chunk, bytes(self._buffer))
            self._buffer.clear()
        self._guard(lambda _: self._prepare_commit(), None)
        self._guard(lambda _: self._finish_hashing(), None)
        self._state = "committing"
        try:
            self.item = self._commit(self._size, self._hash.hexdigest())
        except BaseException:
            self._state = "committing_failed"
            self._abort()
            raise
        self._state = "closed"

    def abort(self) -> None:
        """Discard everything written. Does nothing if already closed or aborted."""
        if self._state != "open":
            return
        self._state = "aborted"
        self._buffer.clear()
        try:
            self._finish_hashing()
        except Exception:  # pylint: disable=broad-except
            pass  # the content is discarded anyway
        self._abort()

    def get_item(self) -> DataItemABC:
        """
        The item close() published.

        :raises ValueError: if nothing was published: the writer is still open, was aborted
            or failed to commit (like write() on a writer that is no longer open).
        """
        if self.item is None:
            raise ValueError(f"writer_is_{self._state}")
        return self.item

    def __enter__(self) -> "DataWriterABC":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        # A writer dropped without close() must not publish half its content.
        if getattr(self, "_state", None) == "open":
            try:
                self.abort()
            except Exception:  # pylint: disable=broad-except
                pass

    # endregion

    def _write_bytes(self, view: memoryview) -> None:
        chunk_size = self.chunk_size
        if not chunk_size:
            self._write_chunk(view)
            return
        buffer = self._buffer
        if buffer:
            needed = chunk_size - len(buffer)
            buffer += view[:needed]
            view = view[needed:]
            if len(buffer) < chunk_size:
                return
            self._emit_chunk(bytes(buffer))
            buffer.clear()
        full = len(view) - len(view) % chunk_size
        for start in range(0, full, chunk_size):
            self._emit_chunk(bytes(view[start : start + chunk_size]))
        if full < len(view):
            buffer += view[full:]

    def _emit_chunk(self, chunk: bytes) -> None:
        """Hash one chunk (on another core when large: nothing can change bytes) and store it."""
        self._finish_hashing()
        if len(chunk) >= PARALLEL_HASH_MIN_BYTES:
            self._hashing = _hash_pool.get().submit(self._hash.update, chunk)
        else:
            self._hash.update(chunk)
        self._write_chunk(chunk)

    def _hash_pending(self) -> bool:
        """True while the hash of the bytes written so far is still being computed."""
        return self._hashing is not None and not self._hashing.done()

    def _prepare_commit(self) -> None:  # noqa: B027 - an optional hook
        """
        Called by close() after the last _write_chunk, before it waits for the hash that
        _commit needs: a backend can store what it still holds here, while the hash of
        the last bytes is computed on another core.
        """

    def _guard(self, fn, arg) -> None:
        """Run a backend step; on any failure discard the upload before re-raising."""
        try:
            fn(arg)
        except BaseException:
            self.abort()
            raise

    @abstractmethod
    def _write_chunk(self, data: Buffer) -> None:
        """Store the next piece of content (not yet visible); data is valid only during the call."""

    @abstractmethod
    def _commit(self, size: int, etag: str) -> DataItemABC:
        """Publish the content in one step and return the new item."""

    @abstractmethod
    def _abort(self) -> None:
        """Remove everything stored by _write_chunk. Must not raise for missing debris."""
