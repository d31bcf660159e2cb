"""The one place where OSError becomes a persisty_data error for the directory store."""

import errno
from typing import Literal, Optional

from persisty_data.errors import KeyConflictError, StorageError, StorageUnavailableError

_UNAVAILABLE = {errno.ENODEV, errno.ENXIO, errno.EIO, errno.ESTALE, errno.ENOTCONN}
_CODES = {
    errno.ENOSPC: "no_space_left",
    errno.EDQUOT: "disk_quota_exceeded",
    errno.EACCES: "permission_denied",
    errno.EPERM: "operation_not_permitted",
    errno.EROFS: "read_only_filesystem",
    errno.ENAMETOOLONG: "name_too_long",
    errno.EMFILE: "too_many_open_files",
}


class map_os_errors:  # noqa: N801 - used like the function it replaces: with map_os_errors(key, name)
    """
    A context manager mapping OSError to KeyConflictError, StorageUnavailableError or
    StorageError. (A class, not a generator: it wraps every file operation.)
    """

    __slots__ = ("key", "store_name")

    def __init__(self, key: Optional[str] = None, store_name: Optional[str] = None):
        self.key = key
        self.store_name = store_name

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> Literal[False]:
        if exc is None or not isinstance(exc, OSError):
            return False
        key, store_name = self.key, self.store_name
        if isinstance(exc, (FileExistsError, NotADirectoryError, IsADirectoryError)):
            raise KeyConflictError(
                "a_file_and_a_directory_cannot_share_a_path", key=key, store_name=store_name
            ) from exc
        if exc.errno in _UNAVAILABLE:
            raise StorageUnavailableError(exc.strerror or str(exc), key=key, store_name=store_name) from exc
        code = _CODES.get(exc.errno or 0, exc.strerror or type(exc).__name__)
        raise StorageError(code, key=key, store_name=store_name) from exc
