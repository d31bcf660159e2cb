"""Search, count, ordering and paging over item metadata."""

from datetime import datetime, timedelta, timezone

import pytest
from persisty.attr.attr_filter import AttrFilter, AttrFilterOp
from persisty.search_filter.and_filter import And
from persisty.search_filter.not_filter import Not
from persisty.search_filter.or_filter import Or
from persisty.search_order.search_order import SearchOrder
from persisty.search_order.search_order_attr import SearchOrderAttr

from persisty_data.errors import InvalidSearchError
from tests.backends import BACKENDS

MANY = 1050


def _f(name, op, value):
    return AttrFilter(name, getattr(AttrFilterOp, op), value)


def _order(*attrs):
    return SearchOrder(tuple(SearchOrderAttr(a.lstrip("-"), a.startswith("-")) for a in attrs))


def _all_pages(store, search_filter=None, search_order=None, limit=100):
    keys, page_key, pages = [], None, 0
    while True:
        kwargs = {"search_order": search_order, "page_key": page_key, "limit": limit}
        if search_filter is not None:
            kwargs["search_filter"] = search_filter
        result = store.search(**kwargs)
        keys.extend(item.key for item in result.results)
        pages += 1
        assert pages < 100, "paging does not end"
        page_key = result.next_page_key
        if not page_key:
            return keys


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def many(request, tmp_path_factory):
    """One store per backend holding MANY small items under p/ and a few others."""
    backend = BACKENDS[request.param]()
    with backend.make(str(tmp_path_factory.mktemp(request.param))) as store:
        for index in range(MANY):
            store.write_bytes(f"p/{index:04d}", b"x" * (index % 7))
        store.write_bytes("other/a.txt", b"hello", "text/plain")
        store.write_bytes("other/b.png", b"png" * 10)
        store.write_bytes("P/upper", b"case")
        store.write_bytes("p_x", b"underscore")
        yield store


class TestListing:
    def test_pages_through_more_than_a_thousand(self, many):
        keys = _all_pages(many, _f("key", "startswith", "p/"))
        assert keys == [f"p/{i:04d}" for i in range(MANY)]

    def test_all_items_in_key_order(self, many):
        keys = _all_pages(many, limit=97)
        assert keys == sorted(keys)
        assert len(keys) == MANY + 4

    def test_count(self, many):
        assert many.count() == MANY + 4
        assert many.count(_f("key", "startswith", "p/")) == MANY
        assert many.count(_f("size", "eq", 0)) == len(range(0, MANY, 7))

    def test_prefix_is_exact_and_case_sensitive(self, many):
        assert [i.key for i in many.search_all(_f("key", "startswith", "P/"))] == ["P/upper"]
        assert [i.key for i in many.search_all(_f("key", "startswith", "p_"))] == ["p_x"]
        assert len(list(many.search_all(_f("key", "startswith", "p/00")))) == 100
        assert list(many.search_all(_f("key", "startswith", "nothing/"))) == []

    def test_last_page_has_no_page_key(self, many):
        result = many.search(_f("key", "startswith", "other/"), limit=2)
        assert [i.key for i in result.results] == ["other/a.txt", "other/b.png"]
        assert result.next_page_key is None

    def test_search_all_streams_everything(self, many):
        assert len(list(many.search_all())) == MANY + 4

    def test_read_batch_limit(self, many):
        with pytest.raises(InvalidSearchError):
            many.read_batch([f"p/{i:04d}" for i in range(many.get_meta().batch_size + 1)])


class TestFilters:
    def test_size_and_content_type(self, many):
        big = [i.key for i in many.search_all(And((_f("size", "gte", 6), _f("key", "startswith", "p/"))))]
        assert big == [f"p/{i:04d}" for i in range(MANY) if i % 7 >= 6]
        assert [i.key for i in many.search_all(_f("content_type", "eq", "text/plain"))] == ["other/a.txt"]
        assert [i.key for i in many.search_all(_f("content_type", "eq", "image/png"))] == ["other/b.png"]
        assert many.count(_f("size", "lt", 1)) == len(range(0, MANY, 7))

    def test_key_equality(self, many):
        assert [i.key for i in many.search_all(_f("key", "eq", "p/0042"))] == ["p/0042"]
        assert list(many.search_all(_f("key", "eq", "p/missing"))) == []
        assert list(many.search_all(_f("key", "eq", "../escape"))) == []

    def test_or_and_not(self, many):
        either = Or((_f("key", "eq", "other/a.txt"), _f("key", "eq", "P/upper")))
        assert [i.key for i in many.search_all(either)] == ["P/upper", "other/a.txt"]
        not_p = And((Not(_f("key", "startswith", "p/")), Not(_f("key", "startswith", "other/"))))
        assert [i.key for i in many.search_all(not_p)] == ["P/upper", "p_x"]

    def test_etag(self, many):
        item = many.read("other/a.txt")
        assert [i.key for i in many.search_all(_f("etag", "eq", item.etag))] == ["other/a.txt"]

    def test_updated_at(self, many):
        now = datetime.now(timezone.utc)
        assert many.count(_f("updated_at", "gt", now + timedelta(minutes=5))) == 0
        assert many.count(_f("updated_at", "lte", now + timedelta(minutes=5))) == MANY + 4
        naive_future = (now + timedelta(minutes=5)).replace(tzinfo=None)
        assert many.count(_f("updated_at", "lt", naive_future)) == MANY + 4

    def test_invalid_filters(self, many):
        with pytest.raises(InvalidSearchError):
            many.search(_f("nope", "eq", 1))
        with pytest.raises(InvalidSearchError):
            many.search(_f("size", "startswith", "1"))
        with pytest.raises(InvalidSearchError):
            many.count(_f("nope", "eq", 1))


class TestOrdering:
    def test_orders(self, many):
        prefix = _f("key", "startswith", "other/")
        assert [i.key for i in many.search_all(prefix, _order("-key"))] == ["other/b.png", "other/a.txt"]
        assert [i.key for i in many.search_all(prefix, _order("size"))] == ["other/a.txt", "other/b.png"]
        assert [i.key for i in many.search_all(prefix, _order("-size"))] == ["other/b.png", "other/a.txt"]
        ordered = list(many.search_all(order_updated := _f("key", "startswith", "p/00"), _order("updated_at")))
        assert [i.updated_at for i in ordered] == sorted(i.updated_at for i in ordered)
        assert len(ordered) == 100 and order_updated

    def test_paging_with_other_orders_is_complete_and_stable(self, many):
        search_filter = _f("key", "startswith", "p/0")
        order = _order("-size")
        keys = _all_pages(many, search_filter, order, limit=33)
        expected = [i.key for i in many.search_all(search_filter, order)]
        assert keys == expected
        assert len(keys) == 1000
        sizes = [int(k[2:]) % 7 for k in keys]
        assert sizes == sorted(sizes, reverse=True)
        # ties are broken by key, so pages never overlap or skip
        assert keys == sorted(keys, key=lambda k: (-(int(k[2:]) % 7), k))

    def test_invalid_order(self, many):
        with pytest.raises(InvalidSearchError):
            many.search(search_order=_order("nope"))


class TestPageKeysAndLimits:
    def test_bad_page_keys(self, many):
        for bad in ("garbage!", "e30", "WzFd", "eyJhZnRlciI6MX0"):
            with pytest.raises(InvalidSearchError):
                many.search(page_key=bad)

    def test_limits(self, many):
        batch_size = many.get_meta().batch_size
        assert len(many.search(limit=1).results) == 1
        assert len(many.search(limit=batch_size).results) == batch_size
        for bad in (0, -1, batch_size + 1):
            with pytest.raises(InvalidSearchError):
                many.search(limit=bad)

    def test_page_keys_survive_deletes_between_pages(self, make_store):
        store = make_store()
        for index in range(10):
            store.write_bytes(f"k/{index}", b"x")
        first = store.search(limit=3)
        assert [i.key for i in first.results] == ["k/0", "k/1", "k/2"]
        store.delete("k/2")
        store.delete("k/3")
        second = store.search(page_key=first.next_page_key, limit=3)
        assert [i.key for i in second.results] == ["k/4", "k/5", "k/6"]
