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
    configure_finders(context)
    configure_starlette(context)


def configure_finders(context: MarshallerContext) -> None:
    """Data store factories in <main>.data_store, and their servey actions."""
    from marshy.factory.impl_marshaller_factory import register_impl
    from servey.finder.action_finder_abc import ActionFinderABC

    from persisty_data.factory.data_store_factory_finder_abc import DataStoreFactoryFinderABC
    from persisty_data.factory.module_data_store_factory_finder import ModuleDataStoreFactoryFinder
    from persisty_data.web.data_store_actions import DataStoreActionFinder

    register_impl(DataStoreFactoryFinderABC, ModuleDataStoreFactoryFinder, context)
    register_impl(ActionFinderABC, DataStoreActionFinder, context)


def configure_starlette(context: MarshallerContext) -> None:
    """Upload / download routes and error answers, when the server extra is installed."""
    try:
        from marshy.factory.impl_marshaller_factory import register_impl
        from servey.servey_starlette.middleware.middleware_factory_abc import MiddlewareFactoryABC
        from servey.servey_starlette.route_factory.route_factory_abc import RouteFactoryABC

        from persisty_data.web.data_store_route_factory import DataStoreRouteFactory
        from persisty_data.web.error_middleware import DataErrorMiddlewareFactory
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("starlette", "python_multipart", "multipart", "anyio"):
            return  # a base install: no web server
        raise
    register_impl(RouteFactoryABC, DataStoreRouteFactory, context)
    register_impl(MiddlewareFactoryABC, DataErrorMiddlewareFactory, context)
