"""Search helpers shared by the backends: filter preparation, key prefixes, page keys."""

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import islice
from operator import attrgetter
from typing import Any, Iterator, List, Optional, Tuple

from persisty.attr.attr import Attr
from persisty.attr.attr_filter import AttrFilter
from persisty.attr.attr_filter_op import AttrFilterOp
from persisty.errors import PersistyError
from persisty.result_set import ResultSet
from persisty.search_filter.and_filter import And
from persisty.search_filter.include_all import INCLUDE_ALL
from persisty.search_filter.not_filter import Not
from persisty.search_filter.or_filter import Or
from persisty.search_filter.search_filter_abc import SearchFilterABC
from persisty.search_order.search_order import SearchOrder
from persisty.search_order.search_order_attr import SearchOrderAttr

from persisty_data.data_item_abc import DataItemABC
from persisty_data.errors import InvalidSearchError

KEY = "key"


@dataclass(frozen=True)
class KeyPrefixFilter(SearchFilterABC):
    """
    Case-sensitive key prefix. persisty's own startswith ignores case; keys are paths, so
    'key startswith' means an exact prefix here, which every backend can push down.
    """

    prefix: str

    def lock_attrs(self, attrs: Tuple[Attr, ...]) -> SearchFilterABC:
        return self

    def match(self, item: Any, attrs: Tuple[Attr, ...] = ()) -> bool:
        return item.key.startswith(self.prefix)

    def build_filter_expression(self, attrs):  # pragma: no cover - never sent to dynamodb
        return None, False


def prepare_filter(search_filter: SearchFilterABC, attrs: Tuple[Attr, ...]) -> SearchFilterABC:
    """Validate a filter against the item attrs; make key prefixes exact and datetimes UTC."""
    if search_filter is None:
        return INCLUDE_ALL
    try:
        locked = search_filter.lock_attrs(attrs)
    except (PersistyError, ValueError, TypeError) as exc:
        raise InvalidSearchError(str(exc)) from None
    return _rewrite(locked)


def _rewrite(search_filter: SearchFilterABC) -> SearchFilterABC:
    if isinstance(search_filter, AttrFilter):
        value = search_filter.value
        if search_filter.name == KEY and search_filter.op == AttrFilterOp.startswith:
            return KeyPrefixFilter(str(value))
        if isinstance(value, datetime):
            value = value.replace(tzinfo=timezone.utc) if not value.tzinfo else value
            return AttrFilter(search_filter.name, search_filter.op, value.astimezone(timezone.utc))
        return search_filter
    if isinstance(search_filter, And):
        return And(tuple(_rewrite(f) for f in search_filter.search_filters))
    if isinstance(search_filter, Or):
        return Or(tuple(_rewrite(f) for f in search_filter.search_filters))
    if isinstance(search_filter, Not):
        return Not(_rewrite(search_filter.search_filter))
    return search_filter


def conjuncts(search_filter: SearchFilterABC) -> Tuple[SearchFilterABC, ...]:
    """The filters that must all hold (the parts of a top level And)."""
    if isinstance(search_filter, And):
        return tuple(search_filter.search_filters)
    if search_filter is INCLUDE_ALL:
        return ()
    return (search_filter,)


def get_key_prefix(search_filter: SearchFilterABC) -> str:
    """The longest key prefix every match must have ('' when there is none)."""
    prefix = ""
    for f in conjuncts(search_filter):
        if isinstance(f, KeyPrefixFilter) and len(f.prefix) > len(prefix):
            prefix = f.prefix
        elif (
            isinstance(f, AttrFilter) and f.name == KEY and f.op == AttrFilterOp.eq and len(str(f.value)) > len(prefix)
        ):
            prefix = str(f.value)
    return prefix


def get_exact_key(search_filter: SearchFilterABC) -> Optional[str]:
    for f in conjuncts(search_filter):
        if isinstance(f, AttrFilter) and f.name == KEY and f.op == AttrFilterOp.eq:
            return str(f.value)
    return None


def match(search_filter: SearchFilterABC, item: Any, attrs: Tuple[Attr, ...]) -> bool:
    return search_filter is INCLUDE_ALL or search_filter.match(item, attrs)


def encode_page_key(value: dict) -> str:
    raw = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_page_key(page_key: Optional[str]) -> dict:
    if not page_key:
        return {}
    try:
        padded = page_key + "=" * (-len(page_key) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(value, dict) or not ({"after", "offset"} & set(value)):
            raise ValueError()
        return value
    except (ValueError, UnicodeError, TypeError):
        raise InvalidSearchError("invalid_page_key") from None


def check_order(search_order: Optional[SearchOrder], attrs: Tuple[Attr, ...]) -> Tuple[SearchOrderAttr, ...]:
    """The order attrs, validated; () means ascending by key."""
    if not search_order or not search_order.orders:
        return ()
    try:
        search_order.validate_for_attrs(attrs)
    except (ValueError, PersistyError) as exc:
        raise InvalidSearchError(str(exc)) from None
    orders = tuple(search_order.orders)
    if len(orders) == 1 and orders[0].attr == KEY and not orders[0].desc:
        return ()
    return orders


def sort_items(items: List[DataItemABC], orders: Tuple[SearchOrderAttr, ...]) -> List[DataItemABC]:
    """Sort by the orders, then by key so pages are stable between calls."""
    items = sorted(items, key=lambda i: i.key)
    for order in reversed(orders):
        items = sorted(items, key=attrgetter(order.attr), reverse=order.desc)
    return items


def check_limit(limit: Optional[int], batch_size: int) -> int:
    if limit is None:
        return batch_size
    if not isinstance(limit, int) or limit < 1 or limit > batch_size:
        raise InvalidSearchError(f"limit_must_be_1_to_{batch_size}")
    return limit


def page_by_key(items: Iterator[DataItemABC], limit: int) -> ResultSet[DataItemABC]:
    """A page from items in ascending key order; the page key names the last key returned."""
    page = list(islice(items, limit + 1))
    next_page_key = None
    if len(page) > limit:
        page = page[:limit]
        next_page_key = encode_page_key({"after": page[-1].key})
    return ResultSet(page, next_page_key)


def page_by_offset(items: List[DataItemABC], offset: int, limit: int) -> ResultSet[DataItemABC]:
    page = items[offset : offset + limit]
    next_page_key = None
    if offset + limit < len(items):
        next_page_key = encode_page_key({"offset": offset + limit})
    return ResultSet(page, next_page_key)


def get_page_position(page_key: Optional[str]) -> Tuple[Optional[str], int]:
    """(key to start after, offset) from a page key made by page_by_key / page_by_offset."""
    value = decode_page_key(page_key)
    after = value.get("after")
    offset = value.get("offset", 0)
    if (after is not None and not isinstance(after, str)) or not isinstance(offset, int) or offset < 0:
        raise InvalidSearchError("invalid_page_key")
    return after, offset
