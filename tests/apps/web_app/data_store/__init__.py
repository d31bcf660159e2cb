"""
The app's data stores, found by persisty_data's ModuleDataStoreFactoryFinder.

WEB_APP_BACKEND=directory or chunk: HostedDataStoreFactory (the app's own /data routes).
WEB_APP_BACKEND=s3: S3DataStoreFactory over one existing bucket per store, named
"<WEB_APP_S3_BUCKET_PREFIX>-private-files" and "...-shared-files", at
WEB_APP_S3_ENDPOINT_URL (e.g. a moto server) in WEB_APP_S3_REGION; credentials from
boto3's chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY). The app has no /data routes then.
"""

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


def _s3_factory(name: str, security: OwnedDataStoreSecurity):
    """Straight to S3: presigned POST forms and presigned GET URLs, no bytes through the app."""
    from persisty_data.s3.s3_data_store import S3DataStore
    from persisty_data.s3.s3_data_store_factory import S3DataStoreFactory

    # The region is passed explicitly: AWS_REGION in the environment would switch persisty's
    # default store factory to DynamoDB. Credentials come from boto3's usual chain (env).
    store = S3DataStore(
        s3_bucket(name),
        name=name,
        endpoint_url=os.environ["WEB_APP_S3_ENDPOINT_URL"],
        region_name=os.environ["WEB_APP_S3_REGION"],
        max_item_size=MAX_ITEM_SIZE,
    )
    return S3DataStoreFactory(store, security=security)


def s3_bucket(store_name: str) -> str:
    """One bucket per store (no prefix), so a form's key field is the item key as on hosted stores."""
    return f"{os.environ['WEB_APP_S3_BUCKET_PREFIX']}-{store_name.replace('_', '-')}"


def _factory(name: str, security: OwnedDataStoreSecurity):
    if BACKEND == "s3":
        return _s3_factory(name, security)
    return HostedDataStoreFactory(_store(name), secret=SECRET, security=security, base_url=BASE_URL)


if BACKEND == "chunk":
    from persisty_data.chunk.sql_store_factory import SqlStoreFactory

    _sql_factory = SqlStoreFactory(f"sqlite:///{os.path.join(ROOT, 'data.sqlite')}")

private_files = _factory("private_files", OwnedDataStoreSecurity())
shared_files = _factory("shared_files", OwnedDataStoreSecurity(read_by_others=True, anonymous_read=True))
