"""Stores binary data as an item row plus fixed-size chunk rows in any persisty store."""

import logging
import sys
import threading
from contextlib import closing, nullcontext
from datetime import datetime, timedelta, timezone
from itertools import islice
from typing import TYPE_CHECKING, Callable, Generator, Iterator, List, Optional, Sequence, Tuple, TypeGuard, Union

from persisty.attr.attr_filter import AttrFilter
from persisty.attr.attr_filter_op import AttrFilterOp
from persisty.batch_edit import BatchEdit
from persisty.factory.store_factory_abc import StoreFactoryABC
from persisty.result_set import ResultSet
from persisty.search_filter.and_filter import And
from persisty.search_filter.include_all import INCLUDE_ALL
from persisty.search_filter.search_filter_abc import SearchFilterABC
from persisty.search_order.search_order import SearchOrder
from persisty.search_order.search_order_attr import SearchOrderAttr
from persisty.store.store_abc import StoreABC

from persisty_data import search
from persisty_data.chunk.chunk_data_item import ChunkDataItem
from persisty_data.chunk.chunk_data_writer import ChunkDataWriter
from persisty_data.chunk.chunk_metas import ITEM_ATTR_NAMES, LEASE_PART, create_chunk_meta, create_item_meta
from persisty_data.chunk.store_errors import map_store_errors
from persisty_data.data_item_abc import DataItemABC
from persisty_data.data_store_abc import DataStoreABC, DataStoreMeta, create_data_store_meta
from persisty_data.errors import ConfigurationError, ContentChangedError, StorageError, UploadExpiredError
from persisty_data.gc_report import GcReport
from persisty_data.keys import is_valid_key, validate_key
from persisty_data.search import KeyPrefixFilter

if TYPE_CHECKING:
    from persisty_data.chunk.sql_table_store import SqlTableStore

logger = logging.getLogger(__name__)
_SQL_TABLE_STORE_MODULE = "persisty_data.chunk.sql_table_store"

DEFAULT_CHUNK_SIZE = 1024 * 1024
MIN_CHUNK_SIZE = 1024
# Chunks moved per round trip: bounded in bytes so memory per transfer stays small, and
# in count so the SQL for a batch of composite keys stays small.
BATCH_BYTES = 1024 * 1024
MAX_BATCH_CHUNKS = 64
# A range inside one chunk at least this large is cut out by the database (on SQL tables
# that can); smaller chunks are cheaper to fetch whole.
SLICE_MIN_CHUNK_SIZE = 64 * 1024
_EXACT_OPS = {AttrFilterOp.eq, AttrFilterOp.ne}
_RANGE_OPS = {AttrFilterOp.gt, AttrFilterOp.gte, AttrFilterOp.lt, AttrFilterOp.lte}
# Publishing and deleting an item is serialised per key within a process (striped locks).
_LOCKS = tuple(threading.Lock() for _ in range(64))
# Lease checks and renewals are serialised per upload within a process (on stores
# without transactions).
_UPLOAD_LOCKS = tuple(threading.Lock() for _ in range(64))
# A publish on SQL tables is one transaction; two first writes of a key racing in two
# processes make one of them retry as an update.
PUBLISH_ATTEMPTS = 3


def _unwrap(store: StoreABC) -> StoreABC:
    """
    Drop trigger and schema-validation wrappers: rows here are built by this class, and
    persisty triggers need a servey app (they fail without SERVEY_MAIN) and mean nothing
    for internal rows.
    """
    while type(store).__name__ in ("AsyncioTriggerStore", "CeleryTriggerStore", "SchemaValidatingStore"):
        store = store.get_store()
    return store


class ChunkDataStore(DataStoreABC):
    """
    Item metadata lives in one persisty store (``{name}_item``) and content in another
    (``{name}_chunk``) as rows of chunk_size bytes, made by any persisty store factory
    (mem, SQL through SqlStoreFactory, DynamoDB...). Both metas are INTERNAL_ONLY, so
    persisty generates no actions for them.

    A write stores its chunks under a fresh upload id and then points the item row at
    them: readers see the old content or the new, never a mix. The previous content's
    chunks are deleted after the switch; a failed or aborted write deletes its own.
    A process that dies mid-write leaves chunks no item points at: gc() (or
    remove_orphan_chunks()) collects them once their lease has not been renewed for the
    age it is given. clock (aware UTC now) is there for tests.

    Pass separate factories when a factory only makes one store (persisty's
    MemStoreFactory caches the first store it creates).
    """

    def __init__(
        self,
        name: str,
        store_factory: StoreFactoryABC,
        chunk_store_factory: Optional[StoreFactoryABC] = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_item_size: Optional[int] = None,
        permitted_content_types: Optional[Tuple[str, ...]] = None,
        batch_size: int = 100,
        clock: Optional[Callable[[], datetime]] = None,
    ):
        self.name = name
        self._clock = clock or _utc_now
        if not isinstance(chunk_size, int) or chunk_size < MIN_CHUNK_SIZE:
            raise ConfigurationError(f"chunk_size_below_{MIN_CHUNK_SIZE}:{chunk_size!r}", store_name=name)
        self.chunk_size = chunk_size
        self.write_batch_chunks = _chunks_per_batch(chunk_size)
        self._meta = create_data_store_meta(name, self, max_item_size, permitted_content_types, batch_size)
        self.item_meta = create_item_meta(f"{name}_item", batch_size)
        self.chunk_meta = create_chunk_meta(f"{name}_chunk", max(batch_size, self.write_batch_chunks))
        with map_store_errors(store_name=name):
            self._item_store = _unwrap(store_factory.create(self.item_meta))
            self._chunk_store = _unwrap((chunk_store_factory or store_factory).create(self.chunk_meta))
        for store, meta in ((self._item_store, self.item_meta), (self._chunk_store, self.chunk_meta)):
            if store is None or store.get_meta().name != meta.name:
                raise ConfigurationError(
                    f"factory_did_not_make_a_store_for:{meta.name} (pass a separate chunk_store_factory)",
                    store_name=name,
                )
        self._item_class = self.item_meta.get_stored_dataclass()
        self._chunk_class = self.chunk_meta.get_stored_dataclass()
        # Both tables on one SQL engine: publish and delete are single transactions.
        self._sql = (
            _is_sql_table_store(self._item_store)
            and _is_sql_table_store(self._chunk_store)
            and self._item_store.fast
            and self._chunk_store.fast
            and self._item_store.engine is self._chunk_store.engine
        )

    def get_meta(self) -> DataStoreMeta:
        return self._meta

    @property
    def item_store(self) -> StoreABC:
        """The internal persisty store of item rows (for maintenance and tests)."""
        return self._item_store

    @property
    def chunk_store(self) -> StoreABC:
        """The internal persisty store of chunk rows (for maintenance and tests)."""
        return self._chunk_store

    # region: rows and items
    def _to_item(self, row) -> ChunkDataItem:
        return ChunkDataItem(
            self,
            row.item_key,
            row.size_in_bytes,
            row.content_type,
            row.etag,
            row.updated_at if isinstance(row.updated_at, datetime) else datetime.fromisoformat(row.updated_at),
            row.upload_id,
            row.chunk_size,
        )

    def _read_row(self, key: str):
        with map_store_errors(key, self.name):
            return self._item_store.read(key)

    def _read(self, key: str) -> Optional[ChunkDataItem]:
        row = self._read_row(key)
        return self._to_item(row) if row else None

    def read_batch(self, keys: List[str]) -> List[Optional[DataItemABC]]:
        self._check_batch(len(keys))
        for key in keys:
            validate_key(key)
        with map_store_errors(store_name=self.name):
            rows = self._item_store.read_batch(list(keys)) if keys else []
        return [self._to_item(row) if row else None for row in rows]

    # endregion

    # region: search
    def search(
        self,
        search_filter: SearchFilterABC = INCLUDE_ALL,
        search_order: Optional[SearchOrder] = None,
        page_key: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> ResultSet[ChunkDataItem]:
        meta = self._meta
        limit = search.check_limit(limit, meta.batch_size)
        prepared = search.prepare_filter(search_filter, meta.attrs)
        orders = search.check_order(search_order, meta.attrs)
        after, offset = search.get_page_position(page_key)
        with closing(self._query(prepared, orders, after if not orders else None)) as items:
            if not orders:
                return search.page_by_key(items, limit)
            page = list(islice(items, offset, offset + limit + 1))
        next_page_key = None
        if len(page) > limit:
            page = page[:limit]
            next_page_key = search.encode_page_key({"offset": offset + limit})
        return ResultSet(page, next_page_key)

    def search_all(
        self,
        search_filter: SearchFilterABC = INCLUDE_ALL,
        search_order: Optional[SearchOrder] = None,
    ) -> Iterator[ChunkDataItem]:
        meta = self._meta
        prepared = search.prepare_filter(search_filter, meta.attrs)
        orders = search.check_order(search_order, meta.attrs)
        return self._query(prepared, orders, None)

    def count(self, search_filter: SearchFilterABC = INCLUDE_ALL) -> int:
        prepared = search.prepare_filter(search_filter, self._meta.attrs)
        pushed, exact = _push_down(prepared)
        if exact:
            with map_store_errors(store_name=self.name):
                return self._item_store.count(pushed)
        with closing(self._query(prepared, (), None)) as items:
            return sum(1 for _ in items)

    def _query(
        self,
        search_filter: SearchFilterABC,
        orders: Tuple[SearchOrderAttr, ...],
        after: Optional[str],
    ) -> Generator[ChunkDataItem, None, None]:
        """Items matching search_filter in the given order (key order when empty)."""
        exact_key = search.get_exact_key(search_filter)
        if exact_key is not None:
            item = self._read(exact_key) if is_valid_key(exact_key) else None
            if item and (after is None or item.key > after) and search_filter.match(item, self._meta.attrs):
                yield item
            return
        pushed, exact = _push_down(search_filter)
        if after is not None:
            pushed = And((pushed, AttrFilter("item_key", AttrFilterOp.gt, after)))
        internal_order = SearchOrder(
            tuple(SearchOrderAttr(ITEM_ATTR_NAMES[o.attr], o.desc) for o in orders) + (SearchOrderAttr("item_key"),)
        )
        attrs = self._meta.attrs
        with map_store_errors(store_name=self.name):
            rows = self._item_store.search_all(pushed, internal_order)
            try:
                for row in rows:
                    item = self._to_item(row)
                    if exact or search_filter.match(item, attrs):
                        yield item
            finally:
                close = getattr(rows, "close", None)
                if close:
                    close()

    # endregion

    # region: content
    def _create_writer(self, key: str, content_type: str) -> ChunkDataWriter:
        return ChunkDataWriter(self, key, content_type)

    def _chunk_keys(self, upload_id: str, part_numbers) -> List[str]:
        key_config = self.chunk_meta.key_config
        keys = []
        for part_number in part_numbers:
            chunk = self._chunk_class(upload_id=upload_id, part_number=part_number)
            keys.append(key_config.to_key_str(chunk))
        return keys

    def _iter_content(self, item: ChunkDataItem, start: int, end: int) -> Iterator[memoryview]:
        """The bytes [start, end) of an item, fetching only the chunks that cover them."""
        if end <= start:
            return
        chunk_size = item.chunk_size
        first, last = start // chunk_size, (end - 1) // chunk_size
        sliced = self._sql and self._chunk_store.slices and chunk_size >= SLICE_MIN_CHUNK_SIZE
        if sliced and first == last and end - start < chunk_size:
            # A part of one large chunk: let the database cut it out instead of sending it all.
            key = self._chunk_keys(item.upload_id, (first,))[0]
            with map_store_errors(item.key, self.name):
                data = self._chunk_store.read_slice(key, "content", start - first * chunk_size, end - start)
            if data is None:
                raise ContentChangedError("item_replaced_or_deleted", key=item.key, store_name=self.name)
            yield memoryview(data)
            return
        per_batch = _chunks_per_batch(chunk_size)
        for batch_start in range(first, last + 1, per_batch):
            part_numbers = range(batch_start, min(last + 1, batch_start + per_batch))
            keys = self._chunk_keys(item.upload_id, part_numbers)
            with map_store_errors(item.key, self.name):
                chunks = self._chunk_store.read_batch(keys)
            for part_number, chunk in zip(part_numbers, chunks):
                if chunk is None:
                    raise ContentChangedError("item_replaced_or_deleted", key=item.key, store_name=self.name)
                content = memoryview(chunk.content)
                chunk_start = part_number * chunk_size
                low = max(start - chunk_start, 0)
                high = min(end - chunk_start, len(content))
                yield content[low:high]
            del chunks

    def _delete_chunks(self, upload_id: str, part_count: int, key: str, quiet: bool = False) -> None:
        try:
            batch_size = self.chunk_meta.batch_size
            for batch_start in range(0, part_count, batch_size):
                keys = self._chunk_keys(upload_id, range(batch_start, min(part_count, batch_start + batch_size)))
                with map_store_errors(key, self.name):
                    self._chunk_store.edit_batch([BatchEdit(delete_key=k) for k in keys])
        except StorageError:
            if not quiet:
                raise
            logger.warning("could_not_delete_chunks upload_id=%s key=%s", upload_id, key, exc_info=True)

    @staticmethod
    def _part_count(size: int, chunk_size: int) -> int:
        return -(-size // chunk_size)

    def _publish(self, item: ChunkDataItem, part_count: int, pending: Sequence = (), leased: bool = False) -> None:
        """
        Store the pending chunk rows, point the item row at the new upload, then drop the
        chunks it replaced (on SQL tables: all in one transaction). leased: the upload
        has chunks stored already, under a lease that must still exist.

        :raises UploadExpiredError: if a cleanup collected the upload first.
        """
        row = self._item_class(
            item_key=item.key,
            size_in_bytes=item.size,
            content_type=item.content_type,
            etag=item.etag,
            updated_at=item.updated_at.replace(tzinfo=None),
            upload_id=item.upload_id,
            chunk_size=item.chunk_size,
        )
        if self._sql:
            self._publish_sql(row, pending, leased)
            return
        key = item.key
        with map_store_errors(key, self.name):
            batch_size = self.chunk_meta.batch_size
            for start in range(0, len(pending), batch_size):
                results = self._chunk_store.edit_batch([BatchEdit(create_item=c) for c in pending[start:][:batch_size]])
                failed = next((r for r in results if not r.success), None)
                if failed is not None:
                    raise StorageError(f"chunk_write_failed:{failed.code}", key=key, store_name=self.name)
        upload_lock = _UPLOAD_LOCKS[hash(item.upload_id) % len(_UPLOAD_LOCKS)] if leased else nullcontext()
        with _LOCKS[hash((self.name, key)) % len(_LOCKS)], upload_lock, map_store_errors(key, self.name):
            if leased:
                self._take_lease(item.upload_id, key)
            old = self._replace_item_row(row)
            if old is not None and old.upload_id != item.upload_id:
                self._delete_chunks(old.upload_id, self._part_count(old.size_in_bytes, old.chunk_size), key)
            current = self._item_store.read(key)
        if current is None or current.upload_id != item.upload_id:
            # A writer in another process published after us (or a delete ran): our
            # chunks are no longer referenced.
            self._delete_chunks(item.upload_id, part_count, key, quiet=True)

    def _take_lease(self, upload_id: str, key: str) -> None:
        """Remove the upload's lease (it is being published), or fail if it is gone."""
        if not self._chunk_store.delete(self._lease_key(upload_id)):
            raise UploadExpiredError("collected_as_abandoned", key=key, store_name=self.name)

    def _replace_item_row(self, row):
        """Create or replace the item row; returns the row it replaced, if any."""
        key = row.item_key
        old = self._item_store.read(key)
        if old is None:
            try:
                self._item_store.create(row)
            except Exception:  # pylint: disable=broad-except
                # Another process created the row first: replace it.
                old = self._item_store.read(key)
                if old is None or self._item_store.update(row) is None:
                    raise
        elif self._item_store.update(row) is None:
            old = None
            self._item_store.create(row)
        return old

    def _publish_sql(self, row, pending: Sequence, leased: bool) -> None:
        items, chunks = self._item_store, self._chunk_store
        key = row.item_key
        for attempt in range(PUBLISH_ATTEMPTS):
            try:
                with map_store_errors(key, self.name), items.transaction(write=True) as cursor:
                    # The lease first: a cleanup holding it has decided, and one after us
                    # finds the item pointing at this upload.
                    if leased and not chunks.delete_in(cursor, self._lease_key(row.upload_id)):
                        raise UploadExpiredError("collected_as_abandoned", key=key, store_name=self.name)
                    chunks.create_many_in(cursor, pending)
                    old = items.read_in(cursor, key, for_update=True)
                    if old is None:
                        items.create_in(cursor, row)
                    else:
                        items.update_in(cursor, row)
                    if old is not None and old.upload_id != row.upload_id:
                        chunks.delete_where_in(cursor, "upload_id", old.upload_id)
                return
            except StorageError as exc:
                if attempt + 1 == PUBLISH_ATTEMPTS or not _is_integrity_error(exc):
                    raise

    def _copy_native(self, source_store, source_item, key, content_type):
        return None  # streaming is as fast as a row copy here

    # endregion

    # region: delete
    def _delete(self, key: str, item) -> bool:
        if self._sql:
            items = self._item_store
            with map_store_errors(key, self.name), items.transaction(write=True) as cursor:
                row = items.read_in(cursor, key, for_update=True)
                if row is None:
                    return False
                items.delete_in(cursor, key)
                self._chunk_store.delete_where_in(cursor, "upload_id", row.upload_id)
            return True
        with _LOCKS[hash((self.name, key)) % len(_LOCKS)], map_store_errors(key, self.name):
            row = self._item_store.read(key)
            if row is None or not self._item_store.delete(key):
                return False
        self._delete_chunks(row.upload_id, self._part_count(row.size_in_bytes, row.chunk_size), key)
        return True

    def remove_orphan_chunks(self, older_than: timedelta = timedelta(hours=1)) -> int:
        """
        Delete the chunks of uploads that no item points at and whose writer has given no
        sign of life for more than older_than (a process that died mid-write, or a write
        that stalled that long: its close then raises UploadExpiredError). Returns how
        many uploads were removed. gc() does the same and reports what it removed.
        """
        return self.gc(older_than).count

    def _gc(self, older_than: timedelta, report: GcReport) -> None:
        cutoff = _db_time(self._clock() - older_than)
        for upload_id, item_key in self._upload_candidates(cutoff):
            size = self._collect_upload(upload_id, item_key, cutoff, report.dry_run)
            if size is not None:
                report.add("upload", upload_id, size, key=item_key)

    def _upload_candidates(self, cutoff: datetime) -> List[Tuple[str, str]]:
        """(upload_id, item_key) of uploads whose first chunk or lease is older than cutoff."""
        if self._sql:
            chunks = self._chunk_store
            sql = (
                f"SELECT DISTINCT {chunks.column_sql('upload_id')}, {chunks.column_sql('item_key')} "
                f"FROM {chunks.table_sql} WHERE {chunks.column_sql('part_number')} IN ({LEASE_PART}, 0) "
                f"AND {chunks.column_sql('created_at')} <= {chunks.mark}"
            )
            with map_store_errors(store_name=self.name), chunks.transaction() as cursor:
                cursor.execute(sql, (chunks.bind_value("created_at", cutoff),))
                return sorted(set((row[0], row[1]) for row in cursor.fetchall()))
        first_parts = And(
            (
                AttrFilter("part_number", AttrFilterOp.lte, 0),
                AttrFilter("part_number", AttrFilterOp.gte, LEASE_PART),
                AttrFilter("created_at", AttrFilterOp.lte, cutoff),
            )
        )
        with map_store_errors(store_name=self.name):
            return sorted(set((c.upload_id, c.item_key) for c in self._chunk_store.search_all(first_parts)))

    def _collect_upload(self, upload_id: str, item_key: str, cutoff: datetime, dry_run: bool) -> Optional[int]:
        """
        Remove one upload if it is dead: not published, and its lease (where it has one)
        last renewed at or before cutoff. Returns its size in bytes, or None if it lives.
        """
        if self._sql:
            return self._collect_upload_sql(upload_id, item_key, cutoff, dry_run)
        with _UPLOAD_LOCKS[hash(upload_id) % len(_UPLOAD_LOCKS)], map_store_errors(item_key, self.name):
            lease = self._chunk_store.read(self._lease_key(upload_id))
            if lease is not None and _db_time(lease.created_at) > cutoff:
                return None
            row = self._item_store.read(item_key)
            if row is not None and row.upload_id == upload_id:
                return None
            if lease is not None and not dry_run:
                # Killed under the lock: a publish of this upload now fails cleanly.
                self._chunk_store.delete(self._lease_key(upload_id))
        with map_store_errors(item_key, self.name):
            parts = list(self._chunk_store.search_all(AttrFilter("upload_id", AttrFilterOp.eq, upload_id)))
            if not parts:
                return None  # replaced and deleted since it was listed
            if not dry_run:
                keys = [self.chunk_meta.key_config.to_key_str(c) for c in parts]
                for batch_start in range(0, len(keys), self.chunk_meta.batch_size):
                    batch = keys[batch_start : batch_start + self.chunk_meta.batch_size]
                    self._chunk_store.edit_batch([BatchEdit(delete_key=k) for k in batch])
        return sum(len(c.content) for c in parts)

    def _collect_upload_sql(self, upload_id: str, item_key: str, cutoff: datetime, dry_run: bool) -> Optional[int]:
        items, chunks = self._item_store, self._chunk_store
        size_sql = (
            f"SELECT COUNT(*), COALESCE(SUM(LENGTH({chunks.column_sql('content')})), 0) FROM {chunks.table_sql} "
            f"WHERE {chunks.column_sql('upload_id')} = {chunks.mark}"
        )
        with map_store_errors(item_key, self.name), items.transaction(write=True) as cursor:
            # The lease row locked, a publish of this upload waits for us, or we for it.
            lease = chunks.read_in(cursor, self._lease_key(upload_id), for_update=True)
            if lease is not None and _db_time(lease.created_at) > cutoff:
                return None
            row = items.read_in(cursor, item_key)
            if row is not None and row.upload_id == upload_id:
                return None
            cursor.execute(size_sql, (upload_id,))
            count, size = cursor.fetchone()
            if not count:
                return None  # replaced and deleted since it was listed
            if not dry_run:
                chunks.delete_where_in(cursor, "upload_id", upload_id)
        return int(size)

    # endregion

    # region: leases
    def _lease_key(self, upload_id: str) -> str:
        return self._chunk_keys(upload_id, (LEASE_PART,))[0]

    def _lease_row(self, upload_id: str, key: str, renewed_at: datetime):
        return self._chunk_class(
            upload_id=upload_id, part_number=LEASE_PART, item_key=key, created_at=renewed_at, content=b""
        )

    def _drop_lease(self, upload_id: str, key: str) -> None:
        try:
            with map_store_errors(key, self.name):
                self._chunk_store.delete(self._lease_key(upload_id))
        except StorageError:
            logger.warning("could_not_delete_lease upload_id=%s key=%s", upload_id, key, exc_info=True)

    def _now(self) -> datetime:
        """The current time as chunk rows store it (naive UTC, whole seconds)."""
        return _db_time(self._clock())

    def _renew_lease(self, upload_id: str, key: str) -> datetime:
        """
        Record that the writer of upload_id is alive.

        :raises UploadExpiredError: if a cleanup collected the upload already.
        """
        now = self._now()
        renewed = self._lease_row(upload_id, key, now)
        if self._sql:
            chunks = self._chunk_store
            with map_store_errors(key, self.name), chunks.transaction(write=True) as cursor:
                alive = chunks.read_in(cursor, self._lease_key(upload_id), for_update=True) is not None
                if alive:
                    chunks.update_in(cursor, renewed)
        else:
            with _UPLOAD_LOCKS[hash(upload_id) % len(_UPLOAD_LOCKS)], map_store_errors(key, self.name):
                alive = self._chunk_store.read(self._lease_key(upload_id)) is not None
                if alive:
                    self._chunk_store.update(renewed)
        if not alive:
            raise UploadExpiredError("collected_as_abandoned", key=key, store_name=self.name)
        return now

    # endregion


def _is_integrity_error(exc: BaseException) -> bool:
    """True if a unique constraint failed somewhere in exc's chain (a concurrent insert)."""
    seen = set()
    current: Optional[BaseException] = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__name__ in ("IntegrityError", "UniqueViolation"):
            return True
        current = current.__cause__ or current.__context__
    return False


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _db_time(value: Union[datetime, str]) -> datetime:
    """A datetime as chunk rows hold it: naive UTC, whole seconds (what SQL stores return)."""
    if isinstance(value, str):  # SQLite rows read without SQLAlchemy's processors
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.replace(microsecond=0)


def _chunks_per_batch(chunk_size: int) -> int:
    return max(1, min(MAX_BATCH_CHUNKS, BATCH_BYTES // chunk_size))


def _push_down(search_filter: SearchFilterABC) -> Tuple[SearchFilterABC, bool]:
    """
    The part of a prepared filter the underlying store can evaluate, in its attr names,
    and whether that part is the whole filter with identical semantics. Only top-level
    conjuncts are pushed, and only as supersets: the exact filter still runs in Python.
    """
    pushed = []
    exact = True
    for f in search.conjuncts(search_filter):
        if isinstance(f, KeyPrefixFilter):
            # SQL LIKE / persisty's startswith are case-insensitive or treat '_' as a
            # wildcard: a superset, refined in Python.
            pushed.append(AttrFilter("item_key", AttrFilterOp.startswith, f.prefix))
            exact = False
        elif (
            isinstance(f, AttrFilter)
            and f.name in ITEM_ATTR_NAMES
            and (f.op in _EXACT_OPS or (f.op in _RANGE_OPS and f.name in ("size", "updated_at")))
        ):
            value = f.value
            if isinstance(value, datetime):
                value = value.astimezone(timezone.utc).replace(tzinfo=None)
            pushed.append(AttrFilter(ITEM_ATTR_NAMES[f.name], f.op, value))
        else:
            exact = False
    return (And(tuple(pushed)) if pushed else INCLUDE_ALL), exact


def _is_sql_table_store(store: StoreABC) -> "TypeGuard[SqlTableStore]":
    """
    Looked up, not imported: a SqlTableStore exists only once its module is loaded, and
    importing it here would load SQLAlchemy for every chunk store, SQL or not.
    """
    module = sys.modules.get(_SQL_TABLE_STORE_MODULE)
    return module is not None and isinstance(store, module.SqlTableStore)
