"""Bounded binary readers shared by the backends."""

import io
from typing import Callable, Iterator, List, Optional, Union

READ_BUFFER_SIZE = 256 * 1024


class RangeReader(io.RawIOBase):
    """Reads at most `length` bytes from a raw file positioned at the start of the range."""

    def __init__(self, raw: io.RawIOBase, length: int):
        super().__init__()
        self._raw = raw
        self._remaining = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self._remaining)
        if count <= 0:
            return 0
        got = self._raw.readinto(memoryview(buffer)[:count]) or 0
        self._remaining -= got
        return got

    def readall(self) -> bytes:
        data = self._raw.read(self._remaining) if self._remaining > 0 else b""
        self._remaining -= len(data or b"")
        return data or b""

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class IterReader(io.RawIOBase):
    """A readable stream over an iterator of byte strings (e.g. chunks or HTTP body parts)."""

    def __init__(self, pieces: Iterator[Union[bytes, memoryview]], on_close: Optional[Callable[[], None]] = None):
        super().__init__()
        self._pieces = pieces
        self._current = memoryview(b"")
        self._on_close = on_close

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._current:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._current = memoryview(piece)
        count = min(len(buffer), len(self._current))
        buffer[:count] = self._current[:count]
        self._current = self._current[count:]
        return count

    def readall(self) -> bytes:
        parts: List[Union[bytes, memoryview]] = [bytes(self._current)]
        self._current = memoryview(b"")
        parts.extend(self._pieces)
        return b"".join(parts)

    def close(self) -> None:
        if not self.closed:
            close = getattr(self._pieces, "close", None)
            if close:
                close()
            if self._on_close:
                self._on_close()
        super().close()


def buffered(raw: io.RawIOBase, buffer_size: int = READ_BUFFER_SIZE) -> io.BufferedReader:
    return io.BufferedReader(raw, buffer_size)
