"""Bounded binary readers shared by the backends, and the check that a full read is intact."""

import hashlib
import io
from typing import Callable, Iterator, List, Optional, Union

from persisty_data.errors import ContentCorruptedError

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


def check_content(key: str, size: int, etag: str, count: int, digest: "hashlib._Hash") -> None:
    """
    Raise ContentCorruptedError unless count bytes hashing to digest are the content an
    item of this size and etag describes.
    """
    if count != size:
        raise ContentCorruptedError(f"read_{count}_bytes_of_{size}", key=key)
    actual = digest.hexdigest()
    if actual != etag:
        raise ContentCorruptedError(f"sha256_{actual}_is_not_the_etag_{etag}", key=key)


class VerifyingReader(io.RawIOBase):
    """
    Passes a whole item's content through, hashing it with SHA-256 as it goes; once `size`
    bytes have gone by (or the content ends early) the hash must be the etag, else the
    read that got there raises ContentCorruptedError. Only a read of the whole content can
    be checked: a byte range has no hash to compare with.
    """

    def __init__(self, raw: io.RawIOBase, key: str, size: int, etag: str):
        super().__init__()
        self._raw = raw
        self._key = key
        self._size = size
        self._etag = etag
        self._digest = hashlib.sha256()
        self._count = 0
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self._raw.readinto(buffer) or 0
        if count:
            # hashlib releases the GIL for buffers this size: other threads keep going.
            self._digest.update(memoryview(buffer)[:count])
        self._advance(count, ended=not count and len(buffer) > 0)
        return count

    def readall(self) -> bytes:
        data = self._raw.readall() or b""
        self._digest.update(data)
        self._advance(len(data), ended=True)
        return data

    def _advance(self, count: int, ended: bool) -> None:
        self._count += count
        if self._checked:
            if count:  # more bytes than the item holds
                check_content(self._key, self._size, self._etag, self._count, self._digest)
            return
        # Checked as soon as the last byte is in: a caller that reads exactly `size`
        # bytes never asks for the end of the stream.
        if ended or self._count >= self._size:
            self._checked = True
            check_content(self._key, self._size, self._etag, self._count, self._digest)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


def buffered(raw: io.RawIOBase, buffer_size: int = READ_BUFFER_SIZE) -> io.BufferedReader:
    return io.BufferedReader(raw, buffer_size)
