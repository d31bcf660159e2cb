"""The hosted endpoints stream: a 64 MiB upload and download stay within a few MiB."""

import hashlib
import tracemalloc

import httpx
from servey.security.authorization import Authorization
from starlette.applications import Starlette

from persisty_data.directory.directory_data_store import DirectoryDataStore
from persisty_data.factory.hosted_data_store_factory import HostedDataStoreFactory
from persisty_data.web.data_store_routes import DataStoreRoutes
from tests.servers import serve

SIZE = 64 * 1024 * 1024
BLOCK = 1024 * 1024
LIMIT = 16 * 1024 * 1024


class _Blocks:
    """A file-like source of SIZE pseudo-random bytes that never holds more than a block."""

    def __init__(self):
        self.block = bytearray(hashlib.sha256(b"x").digest() * (BLOCK // 32))
        self.index = 0
        self.digest = hashlib.sha256()

    def read(self, size=-1):
        if self.index * BLOCK >= SIZE:
            return b""
        self.block[:8] = self.index.to_bytes(8, "little")
        self.index += 1
        data = bytes(self.block)
        self.digest.update(data)
        return data


def test_upload_and_download_of_64_mib_stream(tmp_path):
    store = DirectoryDataStore(str(tmp_path / "root"), name="files")
    factory = HostedDataStoreFactory(store, secret="s" * 32)
    app = Starlette(routes=DataStoreRoutes([factory]).create_routes())
    alice = Authorization("alice", frozenset(), None, None)
    with serve(app) as base:
        factory.base_url = base
        form = factory.get_upload_form("alice/big.bin", alice)
        source = _Blocks()
        tracemalloc.start()
        try:
            with httpx.Client(timeout=120) as client:
                response = client.post(
                    form.url, data=form.fields_dict(), files={"file": ("big.bin", source, "application/octet-stream")}
                )
                upload_peak = tracemalloc.get_traced_memory()[1]
                assert response.status_code == 201, response.text
                assert response.json()["etag"] == source.digest.hexdigest()
                tracemalloc.reset_peak()
                digest = hashlib.sha256()
                url = factory.get_download_url("alice/big.bin", alice)
                with client.stream("GET", url) as download:
                    assert download.status_code == 200
                    for chunk in download.iter_bytes():
                        digest.update(chunk)
                download_peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    print(f"upload peak {upload_peak / 2**20:.1f} MiB, download peak {download_peak / 2**20:.1f} MiB")
    assert digest.hexdigest() == source.digest.hexdigest()
    # client and server share this process: both are counted
    assert upload_peak < LIMIT
    assert download_peak < LIMIT
