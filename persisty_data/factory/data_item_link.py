"""A link field on a persisty model: a download URL for the data item its key attr names."""

from dataclasses import dataclass
from typing import Dict, List, Optional

from persisty.attr.attr import DEFAULT_PERMITTED_FILTER_OPS, Attr
from persisty.attr.attr_type import AttrType
from persisty.attr.generator.default_value_generator import DefaultValueGenerator
from persisty.link.link_abc import LinkABC
from schemey import schema_from_type
from servey.security.authorization import Authorization

from persisty_data.errors import ConfigurationError
from persisty_data.factory.data_store_factory_abc import DataStoreFactoryABC


@dataclass
class DataItemUrlCallable:
    factory: DataStoreFactoryABC
    key: Optional[str]

    def __call__(self, authorization: Optional[Authorization] = None) -> Optional[str]:
        return self.factory.get_download_urls([self.key], authorization)[0]


@dataclass
class DataItemUrl(LinkABC):
    """
    ``image_url: Optional[str] = DataItemUrl(images)`` on a ``@stored`` class gives a
    download URL for the item whose key is in ``image_key`` (added as an optional str
    attr if the class does not declare it), or None if there is none or the caller may
    not read it. In GraphQL, lists resolve all their URLs in batches of metadata reads
    (persisty's link batching); servey's batch loader passes no authorization, so batched
    URLs are those an anonymous caller may get.
    """

    factory: DataStoreFactoryABC
    key_attr_name: Optional[str] = None
    name: Optional[str] = None

    def __set_name__(self, owner, name):
        self.name = name
        if self.key_attr_name is None:
            base = name[: -len("_url")] if name.endswith("_url") else name
            self.key_attr_name = f"{base}_key"

    def get_name(self) -> str:
        if self.name is None:
            raise ConfigurationError("data_item_url_not_assigned_in_a_class_body")
        return self.name

    def get_key_attr_name(self) -> str:
        """The attr holding the item's key; known once __set_name__ ran, unless given."""
        if self.key_attr_name is None:
            raise ConfigurationError("data_item_url_not_assigned_in_a_class_body")
        return self.key_attr_name

    def get_linked_type(self, forward_ref_ns: str):
        return Optional[str]

    def update_attrs(self, attrs_by_name: Dict[str, Attr]):
        key_attr_name = self.get_key_attr_name()
        if key_attr_name in attrs_by_name:
            return
        attrs_by_name[key_attr_name] = Attr(
            key_attr_name,
            AttrType.STR,
            schema_from_type(Optional[str]),
            sortable=False,
            create_generator=DefaultValueGenerator(None),
            permitted_filter_ops=DEFAULT_PERMITTED_FILTER_OPS,
        )

    def __get__(self, obj, obj_type=None):
        if obj is None:
            return self
        return DataItemUrlCallable(self.factory, getattr(obj, self.get_key_attr_name(), None))

    async def batch_call(
        self, keys: List[Optional[str]], authorization: Optional[Authorization] = None
    ) -> List[Optional[str]]:
        return self.factory.get_download_urls(list(keys), authorization)

    def arg_extractor(self, obj) -> List[Optional[str]]:
        return [getattr(obj, self.get_key_attr_name(), None)]
