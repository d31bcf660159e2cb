"""
A hosted store on chunk rows in SQLite, served alone
(uvicorn --factory tests.apps.cut_short_app:create_app), logging as a deployment would:
one line per record, with its level and logger, on stderr.
"""

import logging
import os

from starlette.applications import Starlette

from persisty_data.chunk.chunk_data_store import ChunkDataStore
from persisty_data.chunk.sql_store_factory import SqlStoreFactory
from persisty_data.factory.hosted_data_store_factory import HostedDataStoreFactory
from persisty_data.web.data_store_routes import DataStoreRoutes
from tests.web.support import AUTHORIZER

CHUNK_SIZE = 64 * 1024


def files_factory(database_path: str, secret: str) -> HostedDataStoreFactory:
    store = ChunkDataStore("files", SqlStoreFactory(f"sqlite:///{database_path}"), chunk_size=CHUNK_SIZE)
    return HostedDataStoreFactory(store, secret)


def create_app() -> Starlette:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    factory = files_factory(os.environ["CUT_SHORT_APP_DATABASE"], os.environ["CUT_SHORT_APP_SECRET"])
    return Starlette(routes=DataStoreRoutes([factory], authorizer=AUTHORIZER).create_routes())
