"""
schemey configuration for persisty_data, found by schemey's module discovery: every
top-level module named ``schemey_config_*`` is imported by the default schema context
and its ``configure(context)`` called (highest ``priority`` first).

Gives ``bytes`` a JSON schema, ``{"type": "string", "contentEncoding": "base64"}``,
matching how marshy_config_persisty_data dumps it. Without it, any persisty attr of type
bytes fails with ``ValueError: no_schema_for_type:<class 'bytes'>``.
"""

from typing import Dict, Optional, Type

from marshy.types import ExternalItemType
from schemey.factory.schema_factory_abc import SchemaFactoryABC
from schemey.schema import Schema
from schemey.schema_context import SchemaContext

priority = 110

BYTES_JSON_SCHEMA = {"type": "string", "contentEncoding": "base64"}


class BytesSchemaFactory(SchemaFactoryABC):
    """Schema for bytes, and bytes for that schema."""

    # Factories are tried highest priority first. schemey's str factory (200) claims every
    # {"type": "string"} in from_json, so this must rank above it, as the datetime and
    # uuid factories (210) do.
    priority = 210

    def from_type(
        self,
        type_: Type,
        context: SchemaContext,
        path: str,
        ref_schemas: Dict[Type, Schema],
    ) -> Optional[Schema]:
        if type_ is bytes:
            return Schema(dict(BYTES_JSON_SCHEMA), bytes)
        return None

    def from_json(
        self,
        item: ExternalItemType,
        context: SchemaContext,
        path: str,
        ref_schemas: Dict[str, Schema],
    ) -> Optional[Schema]:
        if item.get("type") == "string" and item.get("contentEncoding") == "base64":
            return Schema(item, bytes)
        return None


def configure(context: SchemaContext) -> None:
    context.register_factory(BytesSchemaFactory())
