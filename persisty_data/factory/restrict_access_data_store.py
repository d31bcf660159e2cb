"""A data store as one caller may use it: reads, searches, uploads and deletes filtered."""

import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Iterator, Optional

from persisty.result_set import ResultSet
from persisty.search_filter.and_filter import And
from persisty.search_filter.exclude_all import EXCLUDE_ALL
from persisty.search_filter.include_all import INCLUDE_ALL
from persisty.search_filter.search_filter_abc import SearchFilterABC
from persisty.search_order.search_order import SearchOrder
from persisty.security.store_access import StoreAccess

from persisty_data import search
from persisty_data.content_types import resolve_content_type
from persisty_data.data_item_abc import DataItemABC
from persisty_data.data_store_abc import DataStoreABC, DataStoreMeta
from persisty_data.data_writer_abc import DataWriterABC
from persisty_data.errors import ForbiddenError
from persisty_data.gc_report import GcReport
from persisty_data.keys import validate_key


class _NewItem:
    """What an upload will create, for create filters (size and etag are not known yet)."""

    def __init__(self, key: str, content_type: str):
        self.key = key
        self.content_type = content_type
        self.size = 0
        self.etag = ""
        self.updated_at = datetime.now(timezone.utc)


def prepare_access(access: StoreAccess, meta: DataStoreMeta) -> StoreAccess:
    """Lock the access filters to the item attrs, with exact (case-sensitive) key prefixes."""
    return StoreAccess(
        create_filter=search.prepare_filter(access.create_filter, meta.attrs),
        read_filter=search.prepare_filter(access.read_filter, meta.attrs),
        update_filter=search.prepare_filter(access.update_filter, meta.attrs),
        delete_filter=search.prepare_filter(access.delete_filter, meta.attrs),
        searchable=access.searchable,
    )


def _is_unrestricted(access: StoreAccess) -> bool:
    filters = (access.create_filter, access.read_filter, access.update_filter, access.delete_filter)
    return access.searchable and all(f is INCLUDE_ALL for f in filters)


class RestrictAccessDataStore(DataStoreABC):
    """
    Wraps a data store with a StoreAccess (see DataStoreSecurityABC). Items the caller
    may not read are invisible: read gives None, searches skip them, delete gives False.
    Writing or deleting a visible item the caller may not change raises ForbiddenError.
    """

    def __init__(self, store: DataStoreABC, access: StoreAccess):
        self.store = store
        self.access = prepare_access(access, store.get_meta())
        meta = store.get_meta()
        # persisty ships no types: mypy knows only DataStoreMeta's own fields, not StoreMeta's.
        self._meta = dataclasses.replace(meta, store_access=self.access & meta.store_access)  # type: ignore[call-arg]

    def get_meta(self) -> DataStoreMeta:
        return self._meta

    def _readable(self, item: Optional[DataItemABC]) -> Optional[DataItemABC]:
        if item is None or self.access.read_filter is EXCLUDE_ALL:
            return None
        if search.match(self.access.read_filter, item, self._meta.attrs):
            return item
        return None

    def _read(self, key: str) -> Optional[DataItemABC]:
        if self.access.read_filter is EXCLUDE_ALL:
            return None
        return self._readable(self.store._read(key))

    def _restricted(self, search_filter: SearchFilterABC) -> SearchFilterABC:
        if not self.access.searchable:
            raise ForbiddenError("search_forbidden", store_name=self._meta.name)
        if self.access.read_filter is INCLUDE_ALL:
            return search_filter
        return And((search_filter or INCLUDE_ALL, self.access.read_filter))

    def search(
        self,
        search_filter: SearchFilterABC = INCLUDE_ALL,
        search_order: Optional[SearchOrder] = None,
        page_key: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> ResultSet[DataItemABC]:
        return self.store.search(self._restricted(search_filter), search_order, page_key, limit)

    def search_all(
        self, search_filter: SearchFilterABC = INCLUDE_ALL, search_order: Optional[SearchOrder] = None
    ) -> Iterator[DataItemABC]:
        return self.store.search_all(self._restricted(search_filter), search_order)

    def count(self, search_filter: SearchFilterABC = INCLUDE_ALL) -> int:
        return self.store.count(self._restricted(search_filter))

    def check_writable(self, key: str, content_type: Optional[str] = None) -> str:
        """
        The content type an upload of key would get, if this caller may upload it.

        :raises ForbiddenError: if the caller may not create or replace the item.
        :raises ContentTypeNotPermittedError: if the store does not permit the type.
        """
        validate_key(key)
        content_type = resolve_content_type(key, content_type, self._meta.permitted_content_types)
        attrs = self._meta.attrs
        existing = self.store._read(key)
        if existing is not None:
            allowed = search.match(self.access.update_filter, existing, attrs) and self._readable(existing) is not None
        else:
            allowed = search.match(self.access.create_filter, _NewItem(key, content_type), attrs)
        if not allowed:
            raise ForbiddenError("upload_forbidden", key=key, store_name=self._meta.name)
        return content_type

    def _create_writer(self, key: str, content_type: str) -> DataWriterABC:
        self.check_writable(key, content_type)
        return self.store._create_writer(key, content_type)

    def _copy_native(self, source_store, source_item, key, content_type):
        self.check_writable(key, content_type)
        if isinstance(source_store, RestrictAccessDataStore):
            source_store = source_store.store  # the read was already authorized
        return self.store._copy_native(source_store, source_item, key, content_type)

    def _gc(self, older_than: timedelta, report: GcReport) -> None:
        # Debris is not anybody's item: only a caller who may do anything to every item
        # may collect it.
        if not _is_unrestricted(self.access):
            raise ForbiddenError("gc_forbidden", store_name=self._meta.name)
        self.store._gc(older_than, report)

    def _delete(self, key: str, item: Optional[DataItemABC]) -> bool:
        existing = self._readable(self.store._read(key))
        if existing is None:
            return False
        if not search.match(self.access.delete_filter, existing, self._meta.attrs):
            raise ForbiddenError("delete_forbidden", key=key, store_name=self._meta.name)
        return self.store._delete(key, existing)
