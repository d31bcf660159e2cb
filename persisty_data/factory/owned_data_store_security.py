"""Ownership by key: a user owns the keys under ``{subject_id}/``."""

from dataclasses import dataclass
from typing import Optional, Tuple

from persisty.search_filter.exclude_all import EXCLUDE_ALL
from persisty.search_filter.include_all import INCLUDE_ALL
from persisty.security.store_access import ALL_ACCESS, NO_ACCESS, StoreAccess
from persisty.store_meta import StoreMeta
from servey.security.authorization import Authorization

from persisty_data.factory.data_store_security_abc import DataStoreSecurityABC
from persisty_data.keys import is_valid_key
from persisty_data.search import KeyPrefixFilter


@dataclass(frozen=True)
class OwnedDataStoreSecurity(DataStoreSecurityABC):
    """
    Signed-in users upload, replace and delete only under ``{subject_id}/``. Reading (and
    listing) items of others is allowed when read_by_others is set; anonymous callers may
    read only when anonymous_read is set, and never write. Callers holding one of
    admin_scopes get full access. A subject id that is not a valid key segment (contains
    '/', control characters...) gets anonymous access.
    """

    read_by_others: bool = False
    anonymous_read: bool = False
    admin_scopes: Tuple[str, ...] = ("root",)

    def get_access(self, store_meta: StoreMeta, authorization: Optional[Authorization]) -> StoreAccess:
        if authorization is not None and any(authorization.has_scope(s) for s in self.admin_scopes):
            return ALL_ACCESS
        subject_id = authorization.subject_id if authorization is not None else None
        if not subject_id or "/" in subject_id or not is_valid_key(subject_id):
            if self.anonymous_read:
                return StoreAccess(
                    create_filter=EXCLUDE_ALL,
                    read_filter=INCLUDE_ALL,
                    update_filter=EXCLUDE_ALL,
                    delete_filter=EXCLUDE_ALL,
                )
            return NO_ACCESS
        own = KeyPrefixFilter(f"{subject_id}/")
        return StoreAccess(
            create_filter=own,
            read_filter=INCLUDE_ALL if self.read_by_others else own,
            update_filter=own,
            delete_filter=own,
        )
