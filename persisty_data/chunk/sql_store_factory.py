"""A persisty store factory for SQL databases that creates its tables when missing."""

import os
import threading
import weakref
from typing import Any, Dict, Optional, Union

from persisty.factory.store_factory_abc import StoreFactoryABC
from persisty.store.store_abc import StoreABC
from persisty.store_meta import StoreMeta

from persisty_data.chunk.store_errors import map_store_errors
from persisty_data.errors import ConfigurationError

try:
    from persisty.impl.sqlalchemy.sqlalchemy_context import SqlalchemyContext
    from sqlalchemy import create_engine, event, inspect
    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import QueuePool

    from persisty_data.chunk.sql_table_store import SqlTableStore
except ModuleNotFoundError as exc:  # pragma: no cover - depends on installed extras
    raise ModuleNotFoundError("SqlStoreFactory needs SQLAlchemy 1.4: pip install 'persisty-data[sql]'") from exc

SQLITE_PRAGMAS = (
    # Larger pages for chunk rows: fewer overflow pages per chunk, faster reads and writes,
    # and a shorter overflow chain to walk for a range read. Only applies to a new file.
    "PRAGMA page_size=16384",
    "PRAGMA journal_mode=WAL",  # readers do not block the writer
    "PRAGMA synchronous=NORMAL",  # durable at checkpoints; safe with WAL
    "PRAGMA busy_timeout=30000",
)


class SqlStoreFactory(StoreFactoryABC):
    """
    Makes plain persisty SQL table stores (no triggers, no schema wrapper) on one
    engine, creating each store's table and indexes if they do not exist yet. The stores
    are SqlTableStores: persisty's SqlalchemyTableStore with faster hot paths.
    SQLite files get WAL mode and a busy timeout so several threads can share them.
    """

    def __init__(
        self,
        url_or_engine: Union[str, "Engine"],
        create_tables: bool = True,
        engine_kwargs: Optional[Dict[str, Any]] = None,
    ):
        if isinstance(url_or_engine, str):
            kwargs = dict(engine_kwargs or {})
            kwargs.setdefault("future", True)
            if url_or_engine.startswith("sqlite"):
                kwargs.setdefault("connect_args", {"check_same_thread": False})
                if ":memory:" not in url_or_engine and url_or_engine.rstrip("/") != "sqlite:":
                    kwargs.setdefault("poolclass", QueuePool)
            try:
                engine = create_engine(url_or_engine, **kwargs)
            except Exception as exc:  # pylint: disable=broad-except
                raise ConfigurationError(f"bad_sql_url:{type(exc).__name__}: {exc}") from None
        else:
            engine = url_or_engine
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _set_sqlite_pragmas)
            _close_cursors_at_checkin(engine)
            database = engine.url.database
            if database and database != ":memory:" and not database.startswith("file:"):
                # A new SQLite file may live in a folder that does not exist yet.
                folder = os.path.dirname(os.path.abspath(database))
                try:
                    os.makedirs(folder, exist_ok=True)
                except OSError as exc:
                    raise ConfigurationError(f"cannot_create_sqlite_folder:{folder}: {exc.strerror}") from None
        self.engine = engine
        self.create_tables = create_tables
        self.context = SqlalchemyContext(engine, developer_mode=False)
        self._lock = threading.Lock()

    def create(self, store_meta: StoreMeta) -> StoreABC:
        with self._lock, map_store_errors(store_name=store_meta.name):
            table = self.context.get_table(store_meta)
            if self.create_tables and not inspect(self.engine).has_table(table.name):
                try:
                    table.create(self.engine, checkfirst=True)
                except Exception:  # pylint: disable=broad-except
                    # Another process may have created it between the check and ours.
                    if not inspect(self.engine).has_table(table.name):
                        raise
            return SqlTableStore(store_meta, table, self.engine)

    def drop_tables(self, *store_metas: StoreMeta) -> None:
        """Drop the tables of the given metas (for tests and teardown)."""
        with self._lock, map_store_errors():
            for store_meta in store_metas:
                self.context.get_table(store_meta).drop(self.engine, checkfirst=True)


# Where a pooled connection's info dict keeps the cursors SQLAlchemy opened on it.
_OPEN_CURSORS = "persisty_data_open_cursors"


def _close_cursors_at_checkin(engine: "Engine") -> None:
    """
    Close every cursor a pooled SQLite connection still holds when it goes back to the
    pool. persisty's search and search_all stop reading a result part way (a page is
    full, a caller closes the iterator) without closing it, and its cursor only goes
    when the garbage collector finds it. Up to Python 3.10 such a cursor keeps its
    statement active, and SQLite then refuses schema changes on that connection
    ("database table is locked" on DROP TABLE).
    """

    def remember(connection, cursor, _statement, _parameters, _context, _executemany) -> None:
        connection.info.setdefault(_OPEN_CURSORS, weakref.WeakSet()).add(cursor)

    def close_all(dbapi_connection, connection_record) -> None:
        cursors = list(connection_record.info.pop(_OPEN_CURSORS, ())) if connection_record is not None else []
        if dbapi_connection is None:
            return  # invalidated: its cursors went with it
        for cursor in cursors:
            cursor.close()

    event.listen(engine, "after_cursor_execute", remember)
    event.listen(engine, "checkin", close_all)


def _set_sqlite_pragmas(dbapi_connection, _connection_record) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()
