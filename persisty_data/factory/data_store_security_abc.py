"""DataStoreSecurityABC: the one policy deciding what a caller may do with a data store."""

from abc import ABC, abstractmethod
from typing import Optional

from persisty.security.store_access import StoreAccess
from persisty.store_meta import StoreMeta
from servey.security.authorization import Authorization


class DataStoreSecurityABC(ABC):
    """
    Gives the StoreAccess of a caller, in persisty's vocabulary, with filters over item
    metadata (key, size, content_type, etag, updated_at):

    - read_filter: items the caller may read, download and see in searches;
    - searchable: whether the caller may search (list) at all;
    - create_filter: new items the caller may upload (matched on key and content type);
    - update_filter: existing items the caller may replace;
    - delete_filter: existing items the caller may delete.

    persisty's own StoreSecurity (UNSECURED, INTERNAL_ONLY, scope based permissions with
    NamedPermission) has the same get_access method and can be used as is.
    """

    @abstractmethod
    def get_access(self, store_meta: StoreMeta, authorization: Optional[Authorization]) -> StoreAccess:
        """The access for this caller (authorization is None for anonymous callers)."""
