"""The one place where OSError becomes a persisty_data error for the directory store."""

import errno
from contextlib import contextmanager
from typing import Iterator, Optional

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


@contextmanager
def map_os_errors(key: Optional[str] = None, store_name: Optional[str] = None) -> Iterator[None]:
    try:
        yield
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
        raise KeyConflictError("a_file_and_a_directory_cannot_share_a_path", key=key, store_name=store_name) from exc
    except OSError as exc:
        if exc.errno in _UNAVAILABLE:
            raise StorageUnavailableError(exc.strerror or str(exc), key=key, store_name=store_name) from exc
        code = _CODES.get(exc.errno or 0, exc.strerror or type(exc).__name__)
        raise StorageError(code, key=key, store_name=store_name) from exc
