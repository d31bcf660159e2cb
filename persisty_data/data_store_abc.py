"""DataStoreABC: the contract every backend implements (a persisty store over item metadata)."""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cache
from typing import BinaryIO, Callable, Iterator, List, Optional, Tuple

from persisty.attr.attr import Attr
from persisty.attr.attr_filter_op import TYPE_FILTER_OPS
from persisty.attr.attr_type import AttrType
from persisty.batch_edit import BatchEdit
from persisty.batch_edit_result import BatchEditResult
from persisty.factory.store_factory_abc import StoreFactoryABC
from persisty.key_config.attr_key_config import AttrKeyConfig
from persisty.result_set import ResultSet
from persisty.search_filter.exclude_all import EXCLUDE_ALL
from persisty.search_filter.include_all import INCLUDE_ALL
from persisty.search_filter.search_filter_abc import SearchFilterABC
from persisty.search_order.search_order import SearchOrder
from persisty.security.store_access import StoreAccess
from persisty.servey.action_factory import ActionFactory
from persisty.store.store_abc import StoreABC
from persisty.store_meta import StoreMeta
from schemey.schema import Schema, datetime_schema, int_schema, str_schema

from persisty_data import search
from persisty_data.content_types import parse_media_range, resolve_content_type
from persisty_data.data_item_abc import DataItemABC
from persisty_data.data_writer_abc import DataWriterABC
from persisty_data.errors import (
    ConfigurationError,
    ContentChangedError,
    InvalidSearchError,
    KeyConflictError,
    MalformedContentTypeError,
    PersistyDataError,
    UnsupportedOperationError,
)
from persisty_data.gc_report import GcReport
from persisty_data.keys import is_valid_key, validate_key

COPY_BUFFER_SIZE = 1024 * 1024

# Content arrives through writers and upload forms, never through persisty's create/update.
DATA_STORE_ACCESS = StoreAccess(create_filter=EXCLUDE_ALL, update_filter=EXCLUDE_ALL)


def _attr(name: str, attr_type: AttrType, schema: Schema) -> Attr:
    return Attr(
        name,
        attr_type,
        schema,
        creatable=False,
        updatable=False,
        permitted_filter_ops=TYPE_FILTER_OPS[attr_type],
    )


@cache
def data_item_attrs() -> Tuple[Attr, ...]:
    """The searchable item attrs. Built on first use: schemey must not be configured while
    marshy loads its plugins (marshy_config_persisty_data imports this module)."""
    # Plain schemas, not schema_from_type: that loads servey's whole marshy configuration
    # (strawberry, boto3...), a second of start-up for every CLI call.
    return (
        _attr("key", AttrType.STR, str_schema()),
        _attr("size", AttrType.INT, int_schema()),
        _attr("content_type", AttrType.STR, str_schema()),
        _attr("etag", AttrType.STR, str_schema()),
        _attr("updated_at", AttrType.DATETIME, datetime_schema()),
    )


@dataclass
class DataStoreMeta(StoreMeta):
    """A StoreMeta for item metadata, plus the store's content limits."""

    max_item_size: Optional[int] = None
    permitted_content_types: Optional[Tuple[str, ...]] = None


@dataclass
class _SameStoreFactory(StoreFactoryABC):
    """Lets persisty's action generation reach the data store from its meta."""

    store: "DataStoreABC"

    def create(self, store_meta: StoreMeta) -> "DataStoreABC":
        return self.store


def create_data_store_meta(
    name: str,
    store: "DataStoreABC",
    max_item_size: Optional[int] = None,
    permitted_content_types: Optional[Tuple[str, ...]] = None,
    batch_size: int = 100,
) -> DataStoreMeta:
    if not name or not isinstance(name, str):
        raise ConfigurationError("store_name_required")
    if max_item_size is not None and (not isinstance(max_item_size, int) or max_item_size < 0):
        raise ConfigurationError(f"max_item_size_invalid:{max_item_size!r}", store_name=name)
    if permitted_content_types is not None:
        permitted_content_types = _permitted_content_types(name, permitted_content_types)
    return DataStoreMeta(
        name=name,
        attrs=data_item_attrs(),
        key_config=AttrKeyConfig("key", AttrType.STR),
        store_access=DATA_STORE_ACCESS,
        batch_size=batch_size,
        action_factory=ActionFactory(),
        store_factory=_SameStoreFactory(store),
        max_item_size=max_item_size,
        permitted_content_types=permitted_content_types,
    )


def _permitted_content_types(name: str, entries: Tuple[str, ...]) -> Tuple[str, ...]:
    """
    The entries parsed as media ranges: a list such as ('image/png,text/html',) would
    otherwise permit nothing or, matched loosely, too much.

    :raises MalformedContentTypeError: for an entry that is not type/subtype, type/* or */*.
    """
    if isinstance(entries, str):
        raise ConfigurationError("permitted_content_types_must_be_a_sequence_not_a_string", store_name=name)
    parsed = []
    for entry in entries:
        try:
            parsed.append(parse_media_range(entry))
        except MalformedContentTypeError as exc:
            raise MalformedContentTypeError(exc.detail, store_name=name) from None
    return tuple(parsed)


class DataStoreABC(StoreABC[DataItemABC], ABC):
    """
    Stores binary items by key. Metadata is searchable through the persisty store
    contract (read, read_batch, search, count, delete, edit_batch for deletes); content
    is written through get_data_writer (or write_bytes / write_stream / copy_data_from)
    and read through each item's get_data_reader.

    Every method that takes a key raises InvalidKeyError for a key that breaks the rules
    in persisty_data.keys. A missing item is None (read) or False (delete), never an error.
    Backend failures raise StorageError / StorageUnavailableError.

    Backends implement get_meta, _read, _delete, _create_writer and either _iter_items
    (items in ascending key order, used by the generic search) or search / search_all /
    count themselves.
    """

    @abstractmethod
    def get_meta(self) -> DataStoreMeta:
        """The store's meta: name, item attrs, max item size, permitted content types."""

    # region: reading metadata
    def read(self, key: str) -> Optional[DataItemABC]:
        """The item stored under key, or None."""
        return self._read(validate_key(key))

    @abstractmethod
    def _read(self, key: str) -> Optional[DataItemABC]:
        """read() for a key already validated."""

    def read_batch(self, keys: List[str]) -> List[Optional[DataItemABC]]:
        """Items for keys, in the same order (None where missing)."""
        self._check_batch(len(keys))
        return [self.read(key) for key in keys]

    def search(
        self,
        search_filter: SearchFilterABC = INCLUDE_ALL,
        search_order: Optional[SearchOrder] = None,
        page_key: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> ResultSet[DataItemABC]:
        """
        A page of items matching search_filter (persisty filters over key, size,
        content_type, etag and updated_at; 'key startswith' is an exact, case-sensitive
        prefix), sorted by search_order (default: ascending key). page_key is the opaque
        next_page_key of the previous page; next_page_key is None on the last page.

        :raises InvalidSearchError: for an unknown attribute or operator, an invalid page
            key, or a limit outside 1..batch_size.
        """
        meta = self.get_meta()
        limit = search.check_limit(limit, meta.batch_size)
        prepared = search.prepare_filter(search_filter, meta.attrs)
        orders = search.check_order(search_order, meta.attrs)
        after, offset = search.get_page_position(page_key)
        if not orders:
            items = self._iter_matches(prepared, after)
            return search.page_by_key(items, limit)
        ordered = search.sort_items(list(self._iter_matches(prepared, None)), orders)
        return search.page_by_offset(ordered, offset, limit)

    def search_all(
        self,
        search_filter: SearchFilterABC = INCLUDE_ALL,
        search_order: Optional[SearchOrder] = None,
    ) -> Iterator[DataItemABC]:
        """Every item matching search_filter, in search_order, streamed where possible."""
        meta = self.get_meta()
        prepared = search.prepare_filter(search_filter, meta.attrs)
        orders = search.check_order(search_order, meta.attrs)
        if not orders:
            return self._iter_matches(prepared, None)
        return iter(search.sort_items(list(self._iter_matches(prepared, None)), orders))

    def count(self, search_filter: SearchFilterABC = INCLUDE_ALL) -> int:
        """How many items match search_filter."""
        return sum(1 for _ in self.search_all(search_filter))

    def _iter_matches(self, search_filter: SearchFilterABC, after: Optional[str]) -> Iterator[DataItemABC]:
        exact_key = search.get_exact_key(search_filter)
        if exact_key is not None:
            item = self._read(exact_key) if is_valid_key(exact_key) else None
            items = iter([item] if item and (after is None or item.key > after) else [])
        else:
            items = self._iter_items(search.get_key_prefix(search_filter), after)
        if search_filter is INCLUDE_ALL:
            return items
        return self._filter_items(items, search_filter)

    def _filter_items(self, items: Iterator[DataItemABC], search_filter: SearchFilterABC) -> Iterator[DataItemABC]:
        attrs = self.get_meta().attrs
        for item in items:
            try:
                matched = search_filter.match(item, attrs)
            except ContentChangedError:
                # A lazily loaded attribute found the item replaced since it was listed.
                fresh = self._read(item.key)
                if fresh is None:
                    continue
                item = fresh
                matched = search_filter.match(item, attrs)
            if matched:
                yield item

    def _iter_items(self, prefix: str, after: Optional[str]) -> Iterator[DataItemABC]:
        """Items whose key starts with prefix and sorts after `after`, ascending by key."""
        raise NotImplementedError()

    # endregion

    # region: writing content
    def get_data_writer(self, key: str, content_type: Optional[str] = None) -> DataWriterABC:
        """
        A writer for new content under key. The content becomes visible only when the
        writer closes without error, replacing any previous content in one step. Content
        type: as given, else guessed from the key's extension, else
        application/octet-stream.

        :raises InvalidKeyError: for an invalid key.
        :raises ContentTypeNotPermittedError: if the store does not permit the type.
        :raises ItemTooLargeError: (from write) once more than max_item_size bytes are
            written; the writer is then aborted.
        """
        validate_key(key)
        meta = self.get_meta()
        content_type = resolve_content_type(key, content_type, meta.permitted_content_types)
        return self._create_writer(key, content_type)

    @abstractmethod
    def _create_writer(self, key: str, content_type: str) -> DataWriterABC:
        """A writer for a validated key and a resolved, permitted content type."""

    def write_bytes(self, key: str, data: bytes, content_type: Optional[str] = None) -> DataItemABC:
        """Store data under key and return the new item."""
        with self.get_data_writer(key, content_type) as writer:
            writer.write(data)
        return writer.get_item()

    def write_stream(
        self,
        key: str,
        stream: BinaryIO,
        content_type: Optional[str] = None,
        buffer_size: int = COPY_BUFFER_SIZE,
    ) -> DataItemABC:
        """Store everything read from a binary stream under key and return the new item."""
        with self.get_data_writer(key, content_type) as writer:
            _copy_stream(stream, writer, buffer_size)
        return writer.get_item()

    def copy_data_from(
        self,
        source_store: "DataStoreABC",
        source_key: str,
        key: Optional[str] = None,
        content_type: Optional[str] = None,
        *,
        progress: Optional[Callable[[int], None]] = None,
    ) -> Optional[DataItemABC]:
        """
        Copy the item source_key of source_store (which may be this store) to key (default:
        the same key) and return the new item, or None if the source is missing. Content
        type defaults to the source's. Uses the backend's own copy (server side, OS) where
        there is one, else streams; the store's limits apply either way. progress, if
        given, is called with each count of bytes copied (a backend's own copy reports the
        whole size once it is done).
        """
        key = validate_key(key if key is not None else source_key)
        source_item = source_store.read(source_key)
        if source_item is None:
            return None
        if source_store is self and source_key == key and content_type is None:
            return source_item
        meta = self.get_meta()
        content_type = resolve_content_type(key, content_type or source_item.content_type, meta.permitted_content_types)
        copied = self._copy_native(source_store, source_item, key, content_type)
        if copied is not None:
            if progress is not None:
                progress(copied.size)
            return copied
        with source_item.get_data_reader() as reader:
            with self._create_writer(key, content_type) as writer:
                _copy_stream(reader, writer, COPY_BUFFER_SIZE, progress)
        return writer.get_item()

    def _copy_native(
        self,
        source_store: "DataStoreABC",
        source_item: DataItemABC,
        key: str,
        content_type: str,
    ) -> Optional[DataItemABC]:
        """Copy without streaming through Python if this backend can; else None."""
        return None

    def create(self, item: DataItemABC) -> Optional[DataItemABC]:
        """
        persisty's create: copies the content of a DataItemABC (from any store) under its
        key. Refuses to replace an existing item.
        """
        if not isinstance(item, DataItemABC):
            raise UnsupportedOperationError("create_needs_a_data_item_use_get_data_writer")
        key = validate_key(item.key)
        if self._read(key) is not None:
            raise KeyConflictError("item_exists", key=key)
        with item.get_data_reader() as reader:
            return self.write_stream(key, reader, item.content_type)

    def _update(self, key: str, item: DataItemABC, updates: DataItemABC) -> Optional[DataItemABC]:
        raise UnsupportedOperationError("update_not_supported_write_new_content_instead", key=key)

    # endregion

    # region: deleting
    def delete(self, key: str) -> bool:
        """Delete the item under key; True if there was one."""
        return self._delete(validate_key(key), None)

    @abstractmethod
    def _delete(self, key: str, item: Optional[DataItemABC]) -> bool:
        """delete() for a validated key (item may be None: do not rely on it)."""

    def edit_batch(
        self, edits: List[BatchEdit[DataItemABC, DataItemABC]]
    ) -> List[BatchEditResult[DataItemABC, DataItemABC]]:
        """Batch deletes (delete_key); creates and updates are refused per edit."""
        self._check_batch(len(edits))
        results = []
        for edit in edits:
            if edit.create_item is not None or edit.update_item is not None:
                results.append(BatchEditResult(edit, False, UnsupportedOperationError.code))
                continue
            try:
                results.append(BatchEditResult(edit, self.delete(edit.delete_key)))
            except PersistyDataError as exc:
                results.append(BatchEditResult(edit, False, exc.code, str(exc)))
        return results

    # endregion

    # region: garbage collection
    def gc(self, older_than: timedelta, dry_run: bool = False) -> GcReport:
        """
        Remove the debris that crashed writers leave (temp files, orphan chunks,
        unfinished multipart uploads...) once it is older than older_than, and say what
        was removed; with dry_run, only say what would be. Debris younger than
        older_than may belong to a write still running, and is left alone: pick an age
        well above the longest write.

        :raises ConfigurationError: for an older_than that is not a timedelta >= 0.
        """
        if not isinstance(older_than, timedelta) or older_than < timedelta(0):
            raise ConfigurationError(f"gc_older_than_invalid:{older_than!r}", store_name=self.get_meta().name)
        report = GcReport(self.get_meta().name, dry_run)
        self._gc(min(older_than, _greatest_age()), report)
        return report

    def _gc(self, older_than: timedelta, report: GcReport) -> None:  # noqa: B027 - a store without debris
        """Add (and unless report.dry_run, remove) this backend's debris older than older_than."""

    # endregion

    def _check_batch(self, size: int) -> None:
        batch_size = self.get_meta().batch_size
        if size > batch_size:
            raise InvalidSearchError(f"batch_larger_than_{batch_size}")


def _copy_stream(
    source: BinaryIO, writer: DataWriterABC, buffer_size: int, progress: Optional[Callable[[int], None]] = None
) -> None:
    readinto = getattr(source, "readinto", None)
    if readinto is None:
        while True:
            data = source.read(buffer_size)
            if not data:
                return
            writer.write(data)
            if progress is not None:
                progress(len(data))
    buffer = bytearray(buffer_size)
    view = memoryview(buffer)
    while True:
        count = readinto(view)
        if not count:
            return
        writer.write(view[:count])
        if progress is not None:
            progress(count)


def _greatest_age() -> timedelta:
    """
    The age of the calendar's second year: nothing stored is older, and a cutoff near
    its first day cannot be computed (datetime raises OverflowError).
    """
    return datetime.now(timezone.utc) - datetime(2, 1, 1, tzinfo=timezone.utc)
