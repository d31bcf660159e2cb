import hashlib
import os


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def random_bytes(size: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes (fast for several MiB)."""
    if size == 0:
        return b""
    block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB
    block = bytes(b ^ (i * 31 + seed) % 256 for i, b in enumerate(block[:4096])) + os.urandom(0)
    repeats = -(-size // len(block))
    data = bytearray(block * repeats)
    # vary every 4 KiB so chunks and parts differ from one another
    for offset in range(0, size, 4096):
        data[offset : offset + 8] = offset.to_bytes(8, "little")
    return bytes(data[:size])
