"""
persisty-data: files of any size for persisty apps (directory, chunked, S3).

The public names below are imported from their modules on first use (PEP 562), for two
reasons: importing persisty reads PERSISTY_SECRET_KEY, which the CLI sets only after it
has imported this package, and some names need an extra (``SqlStoreFactory``: sql,
``S3DataStore``: s3, ``DataStoreRoutes``: server). A name whose extra is missing raises
ModuleNotFoundError naming the extra to install (persisty_data.extras).
"""

__version__ = "0.1.0"

# typing.TYPE_CHECKING without importing typing: this module imports nothing at all.
# Type checkers treat any name TYPE_CHECKING as true.
TYPE_CHECKING = False

# Public name -> the module (under persisty_data) that defines it.
_LAZY: dict[str, str] = {
    # The data store contract
    "DataStoreABC": "data_store_abc",
    "DataStoreMeta": "data_store_abc",
    "DataItemABC": "data_item_abc",
    "DataWriterABC": "data_writer_abc",
    "KeyPrefixFilter": "search",
    "GcReport": "gc_report",
    # Backends without an extra
    "DirectoryDataStore": "directory.directory_data_store",
    "ChunkDataStore": "chunk.chunk_data_store",
    # Factories and access control
    "DataStoreFactoryABC": "factory.data_store_factory_abc",
    "DataStoreSecurityABC": "factory.data_store_security_abc",
    "HostedDataStoreFactory": "factory.hosted_data_store_factory",
    "OwnedDataStoreSecurity": "factory.owned_data_store_security",
    "RestrictAccessDataStore": "factory.restrict_access_data_store",
    "UploadForm": "upload_form",
    "FormField": "upload_form",
    # Configuration and verification
    "DataConfig": "config.data_config",
    "load_config": "config.data_config",
    "verify_store": "verify",
    "VerifyReport": "verify",
    "CorruptItem": "verify",
    # Errors
    "PersistyDataError": "errors",
    "InvalidKeyError": "errors",
    "KeyConflictError": "errors",
    "InvalidRangeError": "errors",
    "InvalidSearchError": "errors",
    "ForbiddenError": "errors",
    "ItemTooLargeError": "errors",
    "ContentTypeNotPermittedError": "errors",
    "MalformedContentTypeError": "errors",
    "UploadRejectedError": "errors",
    "MalformedUploadError": "errors",
    "ContentChangedError": "errors",
    "UploadExpiredError": "errors",
    "UnsupportedOperationError": "errors",
    "ConfigurationError": "errors",
    "StorageError": "errors",
    "StorageUnavailableError": "errors",
    "ContentCorruptedError": "errors",
    # The sql extra
    "SqlStoreFactory": "chunk.sql_store_factory",
    # The s3 extra
    "S3DataStore": "s3.s3_data_store",
    "S3DataStoreFactory": "s3.s3_data_store_factory",
    # The server extra: hosted routes and JSON errors for any Starlette app
    "DataStoreRoutes": "web.data_store_routes",
    "DataErrorMiddleware": "web.error_middleware",
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:  # what type checkers and editors see; tests/test_public_api.py keeps it equal to _LAZY
    from persisty_data.chunk.chunk_data_store import ChunkDataStore
    from persisty_data.chunk.sql_store_factory import SqlStoreFactory
    from persisty_data.config.data_config import DataConfig, load_config
    from persisty_data.data_item_abc import DataItemABC
    from persisty_data.data_store_abc import DataStoreABC, DataStoreMeta
    from persisty_data.data_writer_abc import DataWriterABC
    from persisty_data.directory.directory_data_store import DirectoryDataStore
    from persisty_data.errors import (
        ConfigurationError,
        ContentChangedError,
        ContentCorruptedError,
        ContentTypeNotPermittedError,
        ForbiddenError,
        InvalidKeyError,
        InvalidRangeError,
        InvalidSearchError,
        ItemTooLargeError,
        KeyConflictError,
        MalformedContentTypeError,
        MalformedUploadError,
        PersistyDataError,
        StorageError,
        StorageUnavailableError,
        UnsupportedOperationError,
        UploadExpiredError,
        UploadRejectedError,
    )
    from persisty_data.factory.data_store_factory_abc import DataStoreFactoryABC
    from persisty_data.factory.data_store_security_abc import DataStoreSecurityABC
    from persisty_data.factory.hosted_data_store_factory import HostedDataStoreFactory
    from persisty_data.factory.owned_data_store_security import OwnedDataStoreSecurity
    from persisty_data.factory.restrict_access_data_store import RestrictAccessDataStore
    from persisty_data.gc_report import GcReport
    from persisty_data.s3.s3_data_store import S3DataStore
    from persisty_data.s3.s3_data_store_factory import S3DataStoreFactory
    from persisty_data.search import KeyPrefixFilter
    from persisty_data.upload_form import FormField, UploadForm
    from persisty_data.verify import CorruptItem, VerifyReport, verify_store
    from persisty_data.web.data_store_routes import DataStoreRoutes
    from persisty_data.web.error_middleware import DataErrorMiddleware


if not TYPE_CHECKING:  # hidden from type checkers, so that a misspelt name is an error there

    def __getattr__(name: str) -> object:
        module_name = _LAZY.get(name)
        if module_name is None:
            # AttributeError, not ImportError: `from persisty_data import submodule` relies on it.
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        try:
            module = __import__(f"{__name__}.{module_name}", fromlist=[name])
        except ImportError as exc:
            from persisty_data.extras import missing_extra_error

            error = missing_extra_error(f"persisty_data.{name}", exc)
            if error is None:
                raise
            raise error from exc
        value = getattr(module, name)
        globals()[name] = value  # later lookups are plain attribute reads
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
