"""Native errors are mapped to our hierarchy at one place per backend."""

import errno

import pytest
from persisty.errors import PersistyError

from persisty_data import errors
from persisty_data.chunk.store_errors import map_store_errors
from persisty_data.directory.os_errors import map_os_errors


def test_every_error_is_a_persisty_error_with_a_code():
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, Exception)]
    classes = [c for c in classes if c.__module__ == errors.__name__]
    assert len(classes) >= 12
    codes = set()
    for cls in classes:
        assert issubclass(cls, errors.PersistyDataError) and issubclass(cls, PersistyError)
        codes.add(cls.code)
        error = cls("detail", key="a/b", store_name="s")
        assert str(error).startswith(cls.code) and error.key == "a/b" and error.store_name == "s"
    assert len(codes) == len(classes)


@pytest.mark.parametrize(
    "native,expected",
    [
        (OSError(errno.ENOSPC, "No space left on device"), errors.StorageError),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), errors.StorageError),
        (PermissionError(errno.EACCES, "Permission denied"), errors.StorageError),
        (OSError(errno.EROFS, "Read-only file system"), errors.StorageError),
        (OSError(errno.EIO, "Input/output error"), errors.StorageUnavailableError),
        (OSError(errno.ESTALE, "Stale file handle"), errors.StorageUnavailableError),
        (FileExistsError(errno.EEXIST, "File exists"), errors.KeyConflictError),
        (NotADirectoryError(errno.ENOTDIR, "Not a directory"), errors.KeyConflictError),
        (IsADirectoryError(errno.EISDIR, "Is a directory"), errors.KeyConflictError),
        (OSError(errno.ENAMETOOLONG, "File name too long"), errors.StorageError),
    ],
)
def test_os_errors_are_mapped(native, expected):
    with pytest.raises(expected) as info:
        with map_os_errors("k", "files"):
            raise native
    assert info.value.__cause__ is native
    assert not isinstance(info.value, OSError)


def _sqlalchemy_errors():
    import sqlite3

    import psycopg2
    from sqlalchemy import exc

    return [
        (
            exc.OperationalError("SELECT 1", {}, psycopg2.OperationalError("connection refused")),
            errors.StorageUnavailableError,
        ),
        (
            exc.OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked")),
            errors.StorageUnavailableError,
        ),
        (exc.InterfaceError("SELECT 1", {}, Exception("connection already closed")), errors.StorageUnavailableError),
        (exc.IntegrityError("INSERT", {}, Exception("duplicate key")), errors.StorageError),
        (exc.DataError("INSERT", {}, Exception("value too long")), errors.StorageError),
        (exc.ProgrammingError("SELECT", {}, Exception("no such table")), errors.StorageError),
        (PersistyError("existing_value:x"), errors.StorageError),
        (ConnectionRefusedError(111, "refused"), errors.StorageUnavailableError),
    ]


def test_store_errors_are_mapped():
    for native, expected in _sqlalchemy_errors():
        with pytest.raises(expected) as info:
            with map_store_errors("k", "chunks"):
                raise native
        assert type(info.value) is expected, native
        assert info.value.__cause__ is native


def test_persisty_wrapped_database_errors_are_mapped():
    from sqlalchemy import exc

    native = exc.OperationalError("SELECT 1", {}, Exception("could not connect"))
    try:
        raise PersistyError(native) from native
    except PersistyError as wrapped:
        with pytest.raises(errors.StorageUnavailableError):
            with map_store_errors():
                raise wrapped


def test_our_errors_pass_through_unchanged():
    original = errors.ItemTooLargeError("too big")
    with pytest.raises(errors.ItemTooLargeError) as info:
        with map_store_errors():
            raise original
    assert info.value is original
