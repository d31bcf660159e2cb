"""The two internal persisty metas of a chunk store: one row per item, one row per chunk."""

from datetime import datetime

from persisty.attr.attr import Attr
from persisty.attr.attr_filter_op import TYPE_FILTER_OPS
from persisty.attr.attr_type import AttrType
from persisty.key_config.attr_key_config import AttrKeyConfig
from persisty.key_config.composite_key_config import CompositeKeyConfig
from persisty.security.store_security import INTERNAL_ONLY
from persisty.servey.action_factory import ActionFactory
from persisty.store_meta import StoreMeta
from schemey import Schema, schema_from_type
from schemey.schema import str_schema

from persisty_data.keys import MAX_KEY_BYTES

BYTES_SCHEMA = Schema({"type": "string", "contentEncoding": "base64"}, bytes)

# The chunk row that is an upload's lease: its created_at is when its writer last showed
# it is alive. Stored with the first chunks, renewed (at most every LEASE_RENEW_SECONDS)
# while the write goes on, removed when the upload is published. A cleanup takes only
# uploads whose lease is older than its age limit; a publish whose lease was taken fails
# with UploadExpiredError.
LEASE_PART = -1
LEASE_RENEW_SECONDS = 60

# Attribute names avoid DynamoDB reserved words (key, size, data, name...).
ITEM_ATTR_NAMES = {
    "key": "item_key",
    "size": "size_in_bytes",
    "content_type": "content_type",
    "etag": "etag",
    "updated_at": "updated_at",
}


def _attr(name: str, attr_type: AttrType, python_type: type, schema=None, **kwargs) -> Attr:
    return Attr(
        name,
        attr_type,
        schema or schema_from_type(python_type),
        permitted_filter_ops=TYPE_FILTER_OPS.get(attr_type, ()),
        **kwargs,
    )


def create_item_meta(name: str, batch_size: int = 100) -> StoreMeta:
    """One row per item: its metadata and the id of the upload holding its chunks."""
    return StoreMeta(
        name=name,
        attrs=(
            _attr("item_key", AttrType.STR, str, str_schema(max_length=MAX_KEY_BYTES), updatable=False),
            _attr("size_in_bytes", AttrType.INT, int),
            _attr("content_type", AttrType.STR, str, str_schema(max_length=255)),
            _attr("etag", AttrType.STR, str, str_schema(max_length=64)),
            _attr("updated_at", AttrType.DATETIME, datetime),
            _attr("upload_id", AttrType.STR, str, str_schema(max_length=32)),
            _attr("chunk_size", AttrType.INT, int),
        ),
        key_config=AttrKeyConfig("item_key", AttrType.STR),
        store_security=INTERNAL_ONLY,
        batch_size=batch_size,
        action_factory=ActionFactory(),
    )


def create_chunk_meta(name: str, batch_size: int = 100) -> StoreMeta:
    """
    One row per chunk, keyed by (upload_id, part_number): a new write uses a new
    upload_id, so its chunks are invisible until the item row points at them.
    """
    return StoreMeta(
        name=name,
        attrs=(
            _attr("upload_id", AttrType.STR, str, str_schema(max_length=32), updatable=False),
            _attr("part_number", AttrType.INT, int, updatable=False),
            _attr("item_key", AttrType.STR, str, str_schema(max_length=MAX_KEY_BYTES)),
            _attr("created_at", AttrType.DATETIME, datetime),
            _attr("content", AttrType.BINARY, bytes, BYTES_SCHEMA),
        ),
        key_config=CompositeKeyConfig(
            (
                AttrKeyConfig("upload_id", AttrType.STR),
                AttrKeyConfig("part_number", AttrType.INT),
            )
        ),
        store_security=INTERNAL_ONLY,
        batch_size=batch_size,
        action_factory=ActionFactory(),
    )
