"""DataItemUrl: a persisty model's link field resolving download URLs, batched for lists."""

import asyncio
from typing import Optional
from uuid import UUID

import pytest
from persisty.impl.mem.mem_store_factory import MemStoreFactory
from persisty.store.store_abc import get_store
from persisty.store_meta import get_meta
from persisty.stored import stored
from servey.security.authorization import Authorization
from servey.servey_strawberry.schema_factory import create_schema_factory
from servey.trigger.web_trigger import WebTrigger

from persisty_data.directory.directory_data_store import DirectoryDataStore
from persisty_data.errors import ConfigurationError
from persisty_data.factory.data_item_link import DataItemUrl
from persisty_data.factory.hosted_data_store_factory import HostedDataStoreFactory
from persisty_data.factory.owned_data_store_security import OwnedDataStoreSecurity

ALICE = Authorization("alice", frozenset(), None, None)
BOB = Authorization("bob", frozenset(), None, None)


class CountingFactory(HostedDataStoreFactory):
    """Counts batched URL requests (instrumentation on the real factory)."""

    calls = 0

    def get_download_urls(self, keys, authorization, expire_in=None):
        type(self).calls += 1
        return super().get_download_urls(keys, authorization, expire_in)


@pytest.fixture
def images(tmp_path):
    factory = CountingFactory(
        DirectoryDataStore(str(tmp_path / "images"), name="images"),
        secret="s" * 32,
        security=OwnedDataStoreSecurity(read_by_others=False, anonymous_read=True),
    )
    CountingFactory.calls = 0
    return factory


def _model(images):
    @stored(store_factory=MemStoreFactory(triggers=False))
    class Profile:
        id: UUID
        name: str
        image_url: Optional[str] = DataItemUrl(images)

    return Profile


def test_key_attr_is_added_and_resolves_with_the_callers_authorization(images):
    images.get_store().write_bytes("alice/a.png", b"png")
    Profile = _model(images)
    assert "image_key" in [a.name for a in get_meta(Profile).attrs]
    profile = Profile(name="alice", image_key="alice/a.png")
    url = profile.image_url(ALICE)
    assert url.startswith("/data/images/alice/a.png?expires=")
    assert images.verify_download("alice/a.png", *[p.split("=")[1] for p in url.split("?")[1].split("&")])
    assert profile.image_url(BOB) is None  # bob may read only his own images
    assert Profile(name="none", image_key=None).image_url(ALICE) is None
    assert Profile(name="missing", image_key="alice/missing.png").image_url(ALICE) is None
    assert Profile(name="bad", image_key="../etc/passwd").image_url(ALICE) is None


def test_batch_call_reads_all_keys_in_one_go(images):
    for name in ("a", "b", "c"):
        images.get_store().write_bytes(f"alice/{name}.png", b"png")
    Profile = _model(images)
    urls = asyncio.run(Profile.image_url.batch_call(["alice/a.png", None, "alice/c.png", "nope", "alice/b.png"]))
    assert [u is not None for u in urls] == [True, False, True, False, True]
    assert "alice/c.png" in urls[2]
    assert CountingFactory.calls == 1


def test_graphql_list_resolves_urls_in_one_batch(images):
    images.get_store().write_bytes("alice/a.png", b"png")
    images.get_store().write_bytes("bob/b.png", b"png")
    Profile = _model(images)
    store = get_store(Profile)
    store.create(Profile(name="a", image_key="alice/a.png"))
    store.create(Profile(name="b", image_key="bob/b.png"))
    store.create(Profile(name="c", image_key=None))
    meta = get_meta(Profile)
    schema_factory = create_schema_factory()
    for action in meta.action_factory.create_actions(meta):
        for trigger in action.triggers:
            if isinstance(trigger, WebTrigger):
                schema_factory.create_field_for_action(action, trigger)
    schema = schema_factory.create_schema()
    result = asyncio.run(
        schema.execute(
            "{ profileSearch { results { item { name imageKey imageUrl } } } }",
            context_value={"authorization": None},
        )
    )
    assert result.errors is None, result.errors
    items = {r["item"]["name"]: r["item"] for r in result.data["profileSearch"]["results"]}
    assert items["a"]["imageUrl"].startswith("/data/images/alice/a.png?")
    assert items["b"]["imageUrl"].startswith("/data/images/bob/b.png?")
    assert items["c"]["imageUrl"] is None
    assert CountingFactory.calls == 1


def test_a_link_outside_a_class_body_has_no_name_and_says_so(images):
    # Without __set_name__ there is no link name and no key attr to read: our error, not None.
    link = DataItemUrl(images)
    with pytest.raises(ConfigurationError, match="data_item_url_not_assigned_in_a_class_body"):
        link.get_name()
    with pytest.raises(ConfigurationError, match="data_item_url_not_assigned_in_a_class_body"):
        link.update_attrs({})
    assert DataItemUrl(images, key_attr_name="photo").get_key_attr_name() == "photo"
