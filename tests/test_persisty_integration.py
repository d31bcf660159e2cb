"""Plugins and persisty's action generation: item metadata in REST and GraphQL shapes."""

import typing

import marshy
import pytest
import schemey
from persisty.search_filter.search_filter_factory import search_filter_dataclass_for
from servey.trigger.web_trigger import WebTrigger

from persisty_data.chunk.chunk_data_store import ChunkDataStore
from persisty_data.chunk.sql_store_factory import SqlStoreFactory
from persisty_data.directory.directory_data_store import DirectoryDataStore


@pytest.fixture(params=["directory", "chunk_sqlite"])
def store(request, tmp_path):
    if request.param == "directory":
        store = DirectoryDataStore(str(tmp_path / "root"), name="uploads")
    else:
        store = ChunkDataStore("uploads", SqlStoreFactory(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    store.write_bytes("docs/a.txt", b"hello")
    store.write_bytes("img/b.png", b"png bytes")
    return store


def _actions(store):
    meta = store.get_meta()
    return {a.name: a for a in meta.action_factory.create_actions(meta)}


def _call(action, **kwargs):
    return_type = typing.get_type_hints(action.fn)["return"]
    return marshy.dump(action.fn(**kwargs), return_type)


def test_bytes_marshal_and_schema():
    assert marshy.dump(b"\x00\xffab") == "AP9hYg=="
    assert marshy.load(bytes, "AP9hYg==") == b"\x00\xffab"
    assert marshy.load(bytes, b"raw") == b"raw"
    schema = schemey.schema_from_type(bytes)
    assert schema.schema == {"type": "string", "contentEncoding": "base64"}
    assert schemey.get_default_schema_context().schema_from_json(schema.schema).python_type is bytes


def test_item_metadata_marshals_and_validates(store):
    meta = store.get_meta()
    dumped = marshy.get_default_context().get_marshaller(meta.get_read_dataclass()).dump(store.read("docs/a.txt"))
    assert dumped["key"] == "docs/a.txt"
    assert dumped["size"] == 5
    assert dumped["content_type"] == "text/plain"
    assert len(dumped["etag"]) == 64
    assert dumped["updated_at"].endswith("+00:00")
    assert list(schemey.schema_from_type(meta.get_read_dataclass()).iter_errors(dumped)) == []


def test_generated_actions_are_metadata_only(store):
    names = set(_actions(store))
    assert {"uploads_read", "uploads_search", "uploads_count", "uploads_delete"} <= names
    assert "uploads_create" not in names
    assert "uploads_update" not in names


def test_rest_actions_work_over_the_store(store):
    actions = _actions(store)
    read = _call(actions["uploads_read"], key="docs/a.txt")
    assert read["item"]["size"] == 5 and read["deletable"] is True
    search_filter = search_filter_dataclass_for(store.get_meta())
    found = _call(actions["uploads_search"], search_filter=search_filter(key__startswith="img/"))
    assert [r["key"] for r in found["results"]] == ["img/b.png"]
    assert found["results"][0]["item"]["content_type"] == "image/png"
    assert _call(actions["uploads_count"], search_filter=search_filter(size__gt=5)) == 1
    assert _call(actions["uploads_delete"], key="docs/a.txt") is True
    assert store.read("docs/a.txt") is None


def test_graphql_schema_serves_item_metadata(store):
    from servey.servey_strawberry.schema_factory import create_schema_factory

    factory = create_schema_factory()
    for action in _actions(store).values():
        for trigger in action.triggers:
            if isinstance(trigger, WebTrigger):
                factory.create_field_for_action(action, trigger)
    schema = factory.create_schema()
    result = schema.execute_sync(
        '{ uploadsSearch(searchFilter: {key_Startswith: "docs/"}) '
        "{ results { key item { key size contentType etag updatedAt } } } "
        "uploadsCount }",
        context_value={"authorization": None},  # what servey's starlette route supplies
    )
    assert result.errors is None, result.errors
    results = result.data["uploadsSearch"]["results"]
    assert [r["key"] for r in results] == ["docs/a.txt"]
    assert results[0]["item"]["size"] == 5
    assert results[0]["item"]["contentType"] == "text/plain"
    assert result.data["uploadsCount"] == 2
