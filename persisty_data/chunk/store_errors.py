"""The one place where errors of the underlying persisty stores become our errors."""

from contextlib import contextmanager
from typing import Iterator, Optional

from persisty_data.errors import PersistyDataError, StorageError, StorageUnavailableError

# Raised by DB drivers / SQLAlchemy when the database cannot be reached or is busy.
_UNAVAILABLE_NAMES = {
    "OperationalError",
    "InterfaceError",
    "DisconnectionError",
    "TimeoutError",
    "ConnectionError",
    "EndpointConnectionError",
}


def _is_unavailable(exc: BaseException) -> bool:
    seen = set()
    current: Optional[BaseException] = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__name__ in _UNAVAILABLE_NAMES or isinstance(current, ConnectionError):
            return True
        current = current.__cause__ or current.__context__
    return False


@contextmanager
def map_store_errors(key: Optional[str] = None, store_name: Optional[str] = None) -> Iterator[None]:
    try:
        yield
    except PersistyDataError:
        raise
    except Exception as exc:  # pylint: disable=broad-except
        detail = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if _is_unavailable(exc):
            raise StorageUnavailableError(detail, key=key, store_name=store_name) from exc
        raise StorageError(detail, key=key, store_name=store_name) from exc
