"""
A 256 MiB upload and download through moto's server keep the client's Python
allocations (tracemalloc peak) under 48 MiB. The server runs in its own process so
tracemalloc counts only the client.
"""

import hashlib
import os
import tracemalloc

import boto3
import pytest

from persisty_data.s3.s3_data_store import S3DataStore
from tests.s3_backends import CREDENTIALS, REGION, new_bucket_name
from tests.servers import listening_socket, port_of, start_moto

SIZE = 256 * 1024 * 1024
LIMIT = 48 * 1024 * 1024
BLOCK = 1024 * 1024


@pytest.fixture(scope="module")
def endpoint_url():
    sock = listening_socket()
    port = port_of(sock)
    process = start_moto(sock, {k: v for k, v in os.environ.items() if k != "AWS_REGION"})
    try:
        # The socket listens already: requests wait for moto to start, no polling.
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_256_mib_round_trip_stays_under_48_mib(endpoint_url):
    session = boto3.session.Session(region_name=REGION, **CREDENTIALS)
    bucket = new_bucket_name()
    session.client("s3", endpoint_url=endpoint_url).create_bucket(Bucket=bucket)
    store = S3DataStore(bucket, endpoint_url=endpoint_url, region_name=REGION, session=session)
    block = bytearray(os.urandom(BLOCK))
    expected = hashlib.sha256()

    tracemalloc.start()
    try:
        with store.get_data_writer("big.bin", "application/octet-stream") as writer:
            for index in range(SIZE // BLOCK):
                block[:8] = index.to_bytes(8, "little")  # every block differs
                expected.update(block)
                writer.write(block)
        _, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()

        item = store.read("big.bin")
        digest = hashlib.sha256()
        size = 0
        with item.get_data_reader() as reader:
            buffer = memoryview(bytearray(BLOCK))
            while True:
                count = reader.readinto(buffer)
                if not count:
                    break
                digest.update(buffer[:count])
                size += count
        _, download_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    print(f"tracemalloc peaks: upload {upload_peak / 2**20:.1f} MiB, download {download_peak / 2**20:.1f} MiB")
    assert writer.item.etag == expected.hexdigest() == item.etag
    assert size == SIZE and digest.hexdigest() == expected.hexdigest()
    assert upload_peak < LIMIT, upload_peak
    assert download_peak < LIMIT, download_peak
