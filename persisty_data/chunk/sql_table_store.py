"""A persisty SQL table store whose hot paths run as prepared DB-API statements."""

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from persisty.attr.attr_type import AttrType
from persisty.batch_edit import BatchEdit
from persisty.batch_edit_result import BatchEditResult
from persisty.errors import PersistyError
from persisty.impl.sqlalchemy.sqlalchemy_table_store import SqlalchemyTableStore
from persisty.search_filter.include_all import INCLUDE_ALL
from persisty.search_filter.search_filter_abc import SearchFilterABC
from persisty.util import UNDEFINED

# Attr types whose column values need no more than SQLAlchemy's own type processors.
_PLAIN_TYPES = {AttrType.STR, AttrType.INT, AttrType.FLOAT, AttrType.BOOL, AttrType.DATETIME, AttrType.BINARY}
_DIALECTS = {("sqlite", "pysqlite"), ("postgresql", "psycopg2")}
_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}

Processor = Optional[Callable[[Any], Any]]


@dataclass(frozen=True)
class SqlTableStore(SqlalchemyTableStore):
    """
    persisty's SqlalchemyTableStore, with read, read_batch, create, update, delete and
    edit_batch (creates and deletes) executed as SQL prepared once and run on the
    engine's pooled DB-API connections, and rows loaded without marshy. Everything else
    (search, count...) is persisty's own. Same tables, same stored values, same results.

    Used on SQLite (pysqlite) and PostgreSQL (psycopg2) for metas of plain attrs (str,
    int, float, bool, datetime, bytes) without generators; anything else falls back to
    persisty's implementation (``fast`` is then False).

    transaction() and the ``*_in`` methods let a caller run several statements, on
    several stores sharing this engine, in one transaction.
    """

    def __post_init__(self):
        dialect = self.engine.dialect
        attrs = list(self.meta.attrs)
        fast = (
            (dialect.name, dialect.driver) in _DIALECTS
            and dialect.paramstyle in _PLACEHOLDERS
            and all(
                a.attr_type in _PLAIN_TYPES
                and a.create_generator is None
                and a.update_generator is None
                and a.name in self.table.columns
                for a in attrs
            )
            and not any(_is_enum_column(self.table.columns[a.name]) for a in attrs if a.name in self.table.columns)
        )
        object.__setattr__(self, "fast", fast)
        object.__setattr__(self, "slices", False)
        if not fast:
            return
        quote = dialect.identifier_preparer.quote
        mark = _PLACEHOLDERS[dialect.paramstyle]
        names = [a.name for a in attrs]
        key_names = tuple(n for n in names if n in set(self.meta.key_config.get_key_attrs()))
        columns = [self.table.columns[n] for n in names]
        table = dialect.identifier_preparer.format_table(self.table)
        where_key = " AND ".join(f"{quote(n)} = {mark}" for n in key_names)
        selected = ", ".join(quote(n) for n in names)
        settable = [n for n in names if n not in key_names]
        state = {
            "_sqlite": dialect.name == "sqlite",
            # Parts of binary values without reading them whole: PostgreSQL fetches only the
            # TOAST chunks a substring() needs; SQLite (3.11+) reads incremental blob I/O.
            "slices": dialect.name == "postgresql" or hasattr(dialect.dbapi.Connection, "blobopen"),
            "_mark": mark,
            "_quote": quote,
            "_table_sql": table,
            "_names": tuple(names),
            "_key_names": key_names,
            "_key_index": tuple(names.index(n) for n in key_names),
            "_settable": tuple(settable),
            # The dialect's own conversions, as SQLAlchemy applies them: on SQLite a DATETIME
            # is stored as SQLAlchemy's ISO string (never by sqlite3's default adapter,
            # deprecated since Python 3.12) and read back as a datetime.
            "_binds": {c.name: c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns},
            "_results": tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns),
            "_datetimes": tuple(a.attr_type is AttrType.DATETIME for a in attrs),
            "_read_class": self.meta.get_read_dataclass(),
            "_select_sql": f"SELECT {selected} FROM {table}",
            "_read_sql": f"SELECT {selected} FROM {table} WHERE {where_key}",
            "_insert_sql": f"INSERT INTO {table} ({selected}) VALUES ({', '.join([mark] * len(names))})",
            "_update_sql": (
                f"UPDATE {table} SET {', '.join(f'{quote(n)} = {mark}' for n in settable)} WHERE {where_key}"
                if settable
                else None
            ),
            "_delete_sql": f"DELETE FROM {table} WHERE {where_key}",
            "_batch_sql": {},
            "_dbapi_error": dialect.dbapi.Error,
        }
        for name, value in state.items():
            object.__setattr__(self, name, value)

    # region: transactions
    @contextmanager
    def transaction(self, write: bool = False) -> Iterator[Any]:
        """
        A DB-API cursor in a transaction committed on exit (rolled back on error). With
        write=True on SQLite the transaction takes the write lock up front (BEGIN
        IMMEDIATE), so what it reads stays current until it commits.
        """
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                if write and self._sqlite:
                    cursor.execute("BEGIN IMMEDIATE")
                yield cursor
                connection.commit()
            except BaseException:
                try:
                    connection.rollback()
                except Exception:  # pylint: disable=broad-except
                    pass  # the original error matters; the pool discards a broken connection
                raise
            finally:
                cursor.close()
        except self._dbapi_error as exc:
            raise PersistyError(exc) from exc
        finally:
            connection.close()

    # endregion

    # region: rows
    def _key_values(self, key: str) -> Tuple:
        key_dict = self.meta.key_config.to_key_dict(key)
        return tuple(self._bind(n, key_dict[n]) for n in self._key_names)

    def _bind(self, name: str, value: Any) -> Any:
        process = self._binds[name]
        return process(value) if process is not None and value is not None else value

    def _row_values(self, item: Any, names: Sequence[str]) -> List:
        return [self._bind(name, getattr(item, name)) for name in names]

    def _load_values(self, values: Sequence, converted: bool = False) -> Any:
        """The read dataclass of a row's values: raw DB-API values, or converted by SQLAlchemy."""
        loaded = {}
        for name, value, process, is_datetime in zip(self._names, values, self._results, self._datetimes):
            if process is not None and value is not None and not converted:
                value = process(value)
            if is_datetime and value is not None:
                # What persisty's own load makes of a DATETIME: whole seconds, labelled UTC.
                value = _utc_seconds(value)
            loaded[name] = value
        return self._read_class(**loaded)

    def _load_row(self, row):
        if not self.fast:
            return super()._load_row(row)
        mapping = row._mapping
        if all(name in mapping for name in self._names):
            return self._load_values([mapping[name] for name in self._names], converted=True)
        return super()._load_row(row)

    # endregion

    # region: pieces for a caller's own SQL
    @property
    def table_sql(self) -> str:
        return self._table_sql

    @property
    def mark(self) -> str:
        """The DB-API placeholder."""
        return self._mark

    def column_sql(self, name: str) -> str:
        return self._quote(name)

    def bind_value(self, name: str, value: Any) -> Any:
        """value as a parameter for attr `name`'s column."""
        return self._bind(name, value)

    # endregion

    # region: statements in a caller's transaction
    def read_in(self, cursor, key: str, for_update: bool = False) -> Optional[Any]:
        sql = self._read_sql + (" FOR UPDATE" if for_update and not self._sqlite else "")
        cursor.execute(sql, self._key_values(key))
        row = cursor.fetchone()
        return None if row is None else self._load_values(row)

    def create_in(self, cursor, item: Any) -> None:
        """INSERT item, whose attrs must all be defined."""
        cursor.execute(self._insert_sql, self._row_values(item, self._names))

    def create_many_in(self, cursor, items: Sequence[Any]) -> None:
        """INSERT items, whose attrs must all be defined."""
        if items:
            cursor.executemany(self._insert_sql, [self._row_values(i, self._names) for i in items])

    def update_in(self, cursor, item: Any) -> bool:
        """UPDATE every attr of item (all defined) by its key; True if there was a row."""
        cursor.execute(self._update_sql, self._row_values(item, self._settable + self._key_names))
        return cursor.rowcount > 0

    def delete_in(self, cursor, key: str) -> bool:
        cursor.execute(self._delete_sql, self._key_values(key))
        return cursor.rowcount > 0

    def delete_where_in(self, cursor, name: str, value: Any) -> int:
        """DELETE every row whose attr `name` equals value; returns how many."""
        cursor.execute(f"DELETE FROM {self._table_sql} WHERE {self._quote(name)} = {self._mark}", (value,))
        return cursor.rowcount

    def read_slice(self, key: str, name: str, offset: int, length: int) -> Optional[bytes]:
        """
        Bytes [offset, offset + length) of the binary attr `name` of the row with key, or
        None if there is no such row; only where ``slices`` (the database cuts the value).
        """
        where = self._read_sql[len(self._select_sql) :]  # the WHERE on the key
        with self.transaction() as cursor:
            if not self._sqlite:
                mark = self._mark
                sql = f"SELECT substring({self._quote(name)} FROM {mark} FOR {mark}) FROM {self._table_sql}{where}"
                cursor.execute(sql, (offset + 1, length) + self._key_values(key))
                row = cursor.fetchone()
                return None if row is None else bytes(row[0])
            cursor.execute("BEGIN")  # one snapshot: the rowid found is the row read
            cursor.execute(f"SELECT rowid FROM {self._table_sql}{where}", self._key_values(key))
            row = cursor.fetchone()
            if row is None:
                return None
            with cursor.connection.blobopen(self.table.name, name, row[0], readonly=True) as blob:
                blob.seek(min(offset, len(blob)))
                return blob.read(length)

    # endregion

    # region: persisty's StoreABC
    def read(self, key: str) -> Optional[Any]:
        if not self.fast:
            return super().read(key)
        with self.transaction() as cursor:
            return self.read_in(cursor, key)

    def read_batch(self, keys: List[str]) -> List[Optional[Any]]:
        if not self.fast:
            return super().read_batch(keys)
        assert len(keys) <= self.meta.batch_size
        if not keys:
            return []
        wanted = [self._key_values(k) for k in keys]
        distinct = list(dict.fromkeys(wanted))
        found: Dict[Tuple, Any] = {}
        with self.transaction() as cursor:
            cursor.execute(self._batch_read_sql(len(distinct)), [v for key in distinct for v in key])
            for row in cursor.fetchall():
                found[tuple(row[i] for i in self._key_index)] = self._load_values(row)
        return [found.get(k) for k in wanted]

    def _batch_read_sql(self, count: int) -> str:
        sql = self._batch_sql.get(count)
        if sql is None:
            quote, mark = self._quote, self._mark
            if len(self._key_names) == 1:
                where = f"{quote(self._key_names[0])} IN ({', '.join([mark] * count)})"
            else:
                one = "(" + " AND ".join(f"{quote(n)} = {mark}" for n in self._key_names) + ")"
                where = " OR ".join([one] * count)
            sql = self._batch_sql[count] = f"{self._select_sql} WHERE {where}"
        return sql

    def _complete(self, item: Any) -> bool:
        """True if no attr of item is UNDEFINED (else persisty's own semantics apply)."""
        return self.fast and all(getattr(item, n, UNDEFINED) is not UNDEFINED for n in self._names)

    def create(self, item: Any) -> Optional[Any]:
        if not self._complete(item):
            return super().create(item)
        with self.transaction(write=True) as cursor:
            self.create_in(cursor, item)
        return item

    def update(self, updates: Any, precondition: SearchFilterABC = INCLUDE_ALL) -> Optional[Any]:
        if precondition is not INCLUDE_ALL or not self._complete(updates) or self._update_sql is None:
            return super().update(updates, precondition)
        with self.transaction(write=True) as cursor:
            if not self.update_in(cursor, updates):
                return None
            return self.read_in(cursor, self.meta.key_config.to_key_str(updates))

    def delete(self, key: str) -> bool:
        if not self.fast:
            return super().delete(key)
        with self.transaction(write=True) as cursor:
            return self.delete_in(cursor, key)

    def edit_batch(self, edits: List[BatchEdit]) -> List[BatchEditResult]:
        if not self.fast or any(e.update_item or (e.create_item and not self._complete(e.create_item)) for e in edits):
            return super().edit_batch(edits)
        assert len(edits) <= self.meta.batch_size
        creates = [self._row_values(e.create_item, self._names) for e in edits if e.create_item]
        results = []
        with self.transaction(write=True) as cursor:
            if creates:
                cursor.executemany(self._insert_sql, creates)
            for edit in edits:
                if edit.create_item:
                    results.append(BatchEditResult(edit, True))
                else:
                    results.append(BatchEditResult(edit, self.delete_in(cursor, edit.delete_key)))
        return results

    # endregion


def _is_enum_column(column) -> bool:
    return type(column.type).__name__ == "Enum"


def _utc_seconds(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(microsecond=0, tzinfo=timezone.utc)
    return value
