"""A 256 MiB stream through each backend keeps Python allocations under 16 MiB."""

import hashlib
import tracemalloc

import pytest

from tests.backends import BACKENDS

TOTAL = 256 * 1024 * 1024
BLOCK = 1024 * 1024
LIMIT = 16 * 1024 * 1024
MEMORY_BACKENDS = ["directory", "chunk_sqlite", "chunk_postgres"]  # chunk_mem keeps bytes in memory by design


def _blocks():
    block = bytearray(hashlib.sha256(b"seed").digest() * (BLOCK // 32))
    for index in range(TOTAL // BLOCK):
        block[:8] = index.to_bytes(8, "little")
        yield block


@pytest.mark.parametrize("backend_name", MEMORY_BACKENDS)
def test_256_mib_write_and_read_stay_under_16_mib(backend_name, tmp_path):
    expected = hashlib.sha256()
    for block in _blocks():
        expected.update(block)
    backend = BACKENDS[backend_name]()
    options = {} if backend_name == "directory" else {"chunk_size": BLOCK}
    with backend.make(str(tmp_path), **options) as store:
        tracemalloc.start()
        try:
            baseline = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            with store.get_data_writer("big.bin") as writer:
                for block in _blocks():
                    writer.write(block)
            write_peak = tracemalloc.get_traced_memory()[1] - baseline
            assert writer.item.size == TOTAL
            assert writer.item.etag == expected.hexdigest()

            item = store.read("big.bin")
            baseline = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            actual = hashlib.sha256()
            read = 0
            with item.get_data_reader() as reader:
                while True:
                    data = reader.read(BLOCK)
                    if not data:
                        break
                    actual.update(data)
                    read += len(data)
            read_peak = tracemalloc.get_traced_memory()[1] - baseline
        finally:
            tracemalloc.stop()
        print(f"{backend_name}: write peak {write_peak / 2**20:.1f} MiB, read peak {read_peak / 2**20:.1f} MiB")
        assert read == TOTAL
        assert actual.hexdigest() == expected.hexdigest()
        assert write_peak < LIMIT, write_peak
        assert read_peak < LIMIT, read_peak
        assert store.delete("big.bin")
