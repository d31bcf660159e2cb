"""The app's data stores, found by persisty_data's ModuleDataStoreFactoryFinder."""

import os

from persisty_data.factory.hosted_data_store_factory import HostedDataStoreFactory
from persisty_data.factory.owned_data_store_security import OwnedDataStoreSecurity

ROOT = os.environ["WEB_APP_ROOT"]
SECRET = os.environ["WEB_APP_SECRET"]
BACKEND = os.environ.get("WEB_APP_BACKEND", "directory")
BASE_URL = os.environ.get("WEB_APP_BASE_URL", "")
MAX_ITEM_SIZE = 1024 * 1024


def _store(name: str):
    if BACKEND == "directory":
        from persisty_data.directory.directory_data_store import DirectoryDataStore

        return DirectoryDataStore(os.path.join(ROOT, name), name=name, max_item_size=MAX_ITEM_SIZE)
    if BACKEND == "chunk":
        from persisty_data.chunk.chunk_data_store import ChunkDataStore

        return ChunkDataStore(name, _sql_factory, chunk_size=64 * 1024, max_item_size=MAX_ITEM_SIZE)
    raise ValueError(f"unknown WEB_APP_BACKEND: {BACKEND}")


if BACKEND == "chunk":
    from persisty_data.chunk.sql_store_factory import SqlStoreFactory

    _sql_factory = SqlStoreFactory(f"sqlite:///{os.path.join(ROOT, 'data.sqlite')}")

private_files = HostedDataStoreFactory(
    _store("private_files"),
    secret=SECRET,
    security=OwnedDataStoreSecurity(),
    base_url=BASE_URL,
)

shared_files = HostedDataStoreFactory(
    _store("shared_files"),
    secret=SECRET,
    security=OwnedDataStoreSecurity(read_by_others=True, anonymous_read=True),
    base_url=BASE_URL,
)
