"""
marshy configuration for persisty_data, found by marshy's module discovery: every
top-level module named ``marshy_config_*`` is imported by ``marshy.get_default_context()``
and its ``configure(context)`` called (highest ``priority`` first).

Registers how binary values are marshalled, so that persisty attrs of type bytes
(AttrType.BINARY, e.g. chunk rows) load and dump on every backend:

- dump: ``bytes`` / ``bytearray`` -> base64 ``str`` (JSON, REST, DynamoDB strings)
- load: base64 ``str`` -> ``bytes``; raw binary (``bytes``, ``bytearray``,
  ``memoryview``, as SQL drivers return it, or anything with ``__bytes__``) -> ``bytes``
  unchanged
"""

import base64
import binascii
from dataclasses import dataclass
from typing import Type, Union

from marshy.errors import MarshallError
from marshy.marshaller.marshaller_abc import MarshallerABC
from marshy.marshaller_context import MarshallerContext
from marshy.types import ExternalType

priority = 100

_RAW_BINARY = (bytes, bytearray, memoryview)


def _to_bytes(item: ExternalType) -> bytes:
    if isinstance(item, _RAW_BINARY) or hasattr(type(item), "__bytes__"):
        # __bytes__ covers wrappers such as boto3's dynamodb Binary
        return bytes(item)
    if isinstance(item, str):
        try:
            return base64.b64decode(item.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error) as exc:
            raise MarshallError(f"invalid_base64:{exc}") from None
    raise MarshallError(f"expected_base64_str_or_bytes:{type(item).__name__}")


def _to_base64(item: Union[bytes, bytearray, memoryview]) -> str:
    return base64.b64encode(item).decode("ascii")


@dataclass(frozen=True)
class BytesMarshaller(MarshallerABC[bytes]):
    """bytes <-> base64 str. Loading raw bytes returns them unchanged (SQL returns bytes)."""

    marshalled_type: Type[bytes] = bytes

    def load(self, item: ExternalType) -> bytes:
        return _to_bytes(item)

    def dump(self, item: bytes) -> str:
        return _to_base64(item)


@dataclass(frozen=True)
class BytearrayMarshaller(MarshallerABC[bytearray]):
    """bytearray <-> base64 str, for code that builds content in a mutable buffer."""

    marshalled_type: Type[bytearray] = bytearray

    def load(self, item: ExternalType) -> bytearray:
        return bytearray(_to_bytes(item))

    def dump(self, item: bytearray) -> str:
        return _to_base64(item)


def configure(context: MarshallerContext) -> None:
    context.register_marshaller(BytesMarshaller())
    context.register_marshaller(BytearrayMarshaller())
    # Route factories (servey starlette routes for hosted upload / download) and store
    # finders are registered here in later issues, each inside
    # ``try: ... except ModuleNotFoundError: pass`` so that a base install (no starlette)
    # still configures.
