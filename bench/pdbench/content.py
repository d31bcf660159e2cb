"""Deterministic content: 1 MiB blocks of random bytes, each stamped with its index."""

import hashlib
import io
import random
import struct

BLOCK = 1024 * 1024
MiB = 1024 * 1024
KiB = 1024
_SEED = 20240611


def base_block() -> bytes:
    return random.Random(_SEED).randbytes(BLOCK)


class Pattern:
    """
    Block i of an item is the base block with i (little-endian u64) in its first 8 bytes:
    cheap to generate, never compressible, and any byte range can be recomputed.
    """

    def __init__(self) -> None:
        self.base = base_block()
        self._buffer = bytearray(self.base)
        self._view = memoryview(self._buffer)

    def block(self, index: int) -> memoryview:
        """Block `index` in a reused buffer: valid until the next call."""
        struct.pack_into("<Q", self._buffer, 0, index)
        return self._view

    def blocks(self, size: int, block_size: int = BLOCK):
        """The item of `size` bytes as memoryviews of at most block_size bytes (reused buffer)."""
        assert block_size == BLOCK or BLOCK % block_size == 0
        for start in range(0, size, BLOCK):
            view = self.block(start // BLOCK)[: min(BLOCK, size - start)]
            for piece_start in range(0, len(view), block_size):
                yield view[piece_start : piece_start + block_size]

    def sha256(self, size: int) -> str:
        digest = hashlib.sha256()
        for view in self.blocks(size):
            digest.update(view)
        return digest.hexdigest()

    def range(self, offset: int, length: int) -> bytes:
        parts = []
        while length > 0:
            index, within = divmod(offset, BLOCK)
            block = bytearray(self.base)
            struct.pack_into("<Q", block, 0, index)
            count = min(length, BLOCK - within)
            parts.append(bytes(block[within : within + count]))
            offset += count
            length -= count
        return b"".join(parts)

    def small(self, index: int, size: int) -> bytes:
        """A small item: a slice of the base block, stamped with its index."""
        data = bytearray(self.base[(index * 64) % (BLOCK - size) :][:size])
        struct.pack_into("<Q", data, 0, index)
        return bytes(data)

    def reader(self, size: int) -> "PatternReader":
        return PatternReader(self, size)


class PatternReader(io.RawIOBase):
    """A readable, non-seekable stream over an item (for APIs that take a file object)."""

    def __init__(self, pattern: Pattern, size: int):
        super().__init__()
        self._pattern = pattern
        self._size = size
        self._position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self._size - self._position)
        if count <= 0:
            return 0
        view = memoryview(buffer).cast("B")
        done = 0
        while done < count:
            index, within = divmod(self._position, BLOCK)
            piece = min(count - done, BLOCK - within)
            view[done : done + piece] = self._pattern.block(index)[within : within + piece]
            done += piece
            self._position += piece
        return count


class HashSink(io.RawIOBase):
    """A write-only stream that hashes (for download APIs that take a file object)."""

    def __init__(self) -> None:
        super().__init__()
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.digest.update(data)
        self.size += len(data)
        return len(data)

    def hexdigest(self) -> str:
        return self.digest.hexdigest()


def hash_stream(stream, buffer_size: int = BLOCK):
    """(size, sha256 hex) of everything read from stream, in buffer_size reads."""
    digest = hashlib.sha256()
    size = 0
    readinto = getattr(stream, "readinto", None)
    if readinto is not None:
        buffer = bytearray(buffer_size)
        view = memoryview(buffer)
        while True:
            count = readinto(view)
            if not count:
                break
            digest.update(view[:count])
            size += count
    else:
        while True:
            data = stream.read(buffer_size)
            if not data:
                break
            digest.update(data)
            size += len(data)
    return size, digest.hexdigest()
