"""Messages: persisty records, in SQLite by default (MESSAGER_DATABASE_URL)."""

import dataclasses
import threading
from datetime import datetime
from typing import Dict, Optional
from uuid import UUID

from persisty.factory.store_factory_abc import StoreFactoryABC
from persisty.impl.mem.mem_store_factory import MemStoreFactory
from persisty.security.restrict_access_store import RestrictAccessStore
from persisty.security.store_access import READ_ONLY
from persisty.security.store_security_abc import StoreSecurityABC
from persisty.store.schema_validating_store import SchemaValidatingStore
from persisty.store.store_abc import StoreABC
from persisty.store_meta import StoreMeta
from persisty.stored import stored
from servey.security.authorization import Authorization, AuthorizationError

from messager.settings import DATABASE_URL


class MessageStoreFactory(StoreFactoryABC):
    """
    One validating store per meta over MESSAGER_DATABASE_URL: a SQL URL (tables are
    created when missing) or "mem". No persisty triggers: the app needs none.
    """

    def __init__(self, url: str):
        self.url = url
        self._stores: Dict[str, StoreABC] = {}
        self._lock = threading.Lock()
        self._sql = None

    def create(self, store_meta: StoreMeta) -> StoreABC:
        with self._lock:
            store = self._stores.get(store_meta.name)
            if store is None:
                if self.url == "mem":
                    store = MemStoreFactory(triggers=False).create(store_meta)
                else:
                    if self._sql is None:
                        from persisty_data.chunk.sql_store_factory import SqlStoreFactory

                        self._sql = SqlStoreFactory(self.url)
                    store = SchemaValidatingStore(self._sql.create(store_meta))
                self._stores[store_meta.name] = store
            return store


@dataclasses.dataclass(frozen=True)
class SignedInReadOnly(StoreSecurityABC):
    """
    Signed-in users read and search every message; nobody creates, edits or deletes
    through persisty's generated actions. Messages are posted by the post_message action,
    which takes the author from the caller's token (never from the request body).
    """

    def get_secured(self, store: StoreABC, authorization: Optional[Authorization]) -> StoreABC:
        if authorization is None or not authorization.subject_id:
            raise AuthorizationError("sign_in_required")
        return RestrictAccessStore(store, READ_ONLY)

    def get_api_meta(self, store_meta: StoreMeta) -> StoreMeta:
        return dataclasses.replace(store_meta, store_access=READ_ONLY)


@stored(
    store_access=READ_ONLY,  # the generated API: message_read, _search, _count, _read_batch
    store_security=SignedInReadOnly(),
    store_factory=MessageStoreFactory(DATABASE_URL),
)
class Message:
    """A message, optionally with an attachment (an item of the attachments data store)."""

    id: UUID
    author: str  # the author's subject id, from the token
    text: str
    # No "= None" defaults: persisty 0.0.17 turns them into DEFAULT 'NULL' (a string) in
    # SQL, which PostgreSQL refuses for an integer column. post_message sets all three.
    attachment_key: Optional[str]  # always under "{author}/"
    attachment_content_type: Optional[str]  # as stored when the message was posted
    attachment_size: Optional[int]
    created_at: datetime
