"""Scrubbing: read every item of a store in full, so damaged content is found before a user finds it."""

import io
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple, cast

from persisty.search_filter.include_all import INCLUDE_ALL
from persisty.search_filter.search_filter_abc import SearchFilterABC

from persisty_data.data_item_abc import DataItemABC
from persisty_data.data_store_abc import DataStoreABC
from persisty_data.errors import ContentChangedError, ContentCorruptedError
from persisty_data.search import KeyPrefixFilter

VERIFY_BUFFER_SIZE = 1024 * 1024
CHANGED_ATTEMPTS = 3


@dataclass(frozen=True)
class CorruptItem:
    """An item whose stored bytes are not the content its etag describes."""

    key: str
    detail: str


@dataclass
class VerifyReport:
    """What verify_store read: how many items and bytes, and which items are corrupt."""

    items: int = 0
    bytes: int = 0
    corrupt: List[CorruptItem] = field(default_factory=list)


# Called after each item with the item and, if it is corrupt, the error.
OnItem = Callable[[DataItemABC, Optional[ContentCorruptedError]], None]


def verify_store(store: DataStoreABC, prefix: str = "", on_item: Optional[OnItem] = None) -> VerifyReport:
    """
    Read every item whose key starts with prefix in full, checking its content against its
    etag. An item replaced while it is read is read again; one deleted meanwhile is skipped.
    Memory stays at one buffer, whatever the item sizes.

    :raises StorageError: if the store fails otherwise (unreachable, refused...).
    """
    search_filter: SearchFilterABC = KeyPrefixFilter(prefix) if prefix else INCLUDE_ALL
    report = VerifyReport()
    buffer = memoryview(bytearray(VERIFY_BUFFER_SIZE))
    for listed in store.search_all(search_filter):
        item = _checked_item(store, listed, buffer)
        if item is None:
            continue
        checked, error = item
        report.items += 1
        report.bytes += checked.size
        if error is not None:
            report.corrupt.append(CorruptItem(checked.key, error.detail or error.code))
        if on_item is not None:
            on_item(checked, error)
    return report


def _checked_item(
    store: DataStoreABC, item: DataItemABC, buffer: memoryview
) -> Optional[Tuple[DataItemABC, Optional[ContentCorruptedError]]]:
    """(item, None) if intact, (item, error) if corrupt, None if it is gone."""
    current: Optional[DataItemABC] = item
    for _ in range(CHANGED_ATTEMPTS):
        if current is None:
            return None
        try:
            _read_through(current, buffer)
            return current, None
        except ContentCorruptedError as exc:
            return current, exc
        except ContentChangedError:
            # Replaced (or deleted) since it was listed: the new content is what to check.
            current = store.read(current.key)
    # Rewritten again and again while we read: each new content was hashed as it was
    # written, so there is nothing old left to check.
    return None


def _read_through(item: DataItemABC, buffer: memoryview) -> None:
    with item.get_data_reader() as reader:
        # Every reader a store returns is buffered (io.BufferedReader), which has readinto.
        while cast(io.BufferedIOBase, reader).readinto(buffer):
            pass
