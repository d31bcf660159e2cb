"""StoreConfig: one store's validated settings, and how its store and factory are built."""

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Dict, Mapping, Optional

from persisty_data.data_store_abc import DataStoreABC
from persisty_data.errors import ConfigurationError
from persisty_data.factory.data_store_factory_abc import DataStoreFactoryABC
from persisty_data.factory.data_store_security_abc import DataStoreSecurityABC

_LIMITS = ("max_item_size", "permitted_content_types")


@dataclass(frozen=True)
class StoreConfig:
    """
    The settings of one store after defaults, file and environment are merged and
    validated (load_config builds these). ``settings`` holds every other setting that
    was given and applies to this store, parsed (local paths absolute); settings left
    out take the defaults of the store and factory classes. The secret is kept apart
    and never shown.
    """

    name: str
    backend: str  # directory | chunk | s3
    factory: str  # hosted | s3
    policy: str  # owned | unsecured | internal
    settings: Mapping[str, Any] = field(default_factory=dict)
    secret: Optional[bytes] = field(default=None, repr=False)

    def create_factory(self) -> DataStoreFactoryABC:
        """A new factory over a new store. Raises ConfigurationError naming the store."""
        try:
            return self._create_factory()
        except ConfigurationError as exc:
            detail = exc.detail or str(exc)
            raise ConfigurationError(f"stores.{self.name}: {detail}", store_name=self.name) from None
        except OSError as exc:  # e.g. SqlStoreFactory creating the folder of a SQLite file
            raise ConfigurationError(f"stores.{self.name}: {exc}", store_name=self.name) from None

    def _create_factory(self) -> DataStoreFactoryABC:
        store = self.create_store()
        security = self.create_security()
        settings = self.settings
        kwargs: Dict[str, Any] = {
            name: timedelta(seconds=settings[name]) for name in ("upload_expiry", "download_expiry") if name in settings
        }
        if self.factory == "s3":
            from persisty_data.s3.s3_data_store_factory import S3DataStoreFactory

            return S3DataStoreFactory(store, security=security, name=self.name, **kwargs)
        from persisty_data.factory.hosted_data_store_factory import HostedDataStoreFactory

        kwargs.update({name: settings[name] for name in ("base_url", "path_prefix") if name in settings})
        assert self.secret is not None, "load_config resolves the secret of every hosted store"
        return HostedDataStoreFactory(store, secret=self.secret, security=security, name=self.name, **kwargs)

    def create_store(self) -> DataStoreABC:
        """A new store with these settings (full access: no policy applied)."""
        settings = self.settings
        limits = {name: settings[name] for name in _LIMITS if name in settings}
        if self.backend == "directory":
            from persisty_data.directory.directory_data_store import DirectoryDataStore

            options = {name: settings[name] for name in ("fsync",) if name in settings}
            return DirectoryDataStore(settings["root"], name=self.name, **limits, **options)
        if self.backend == "chunk":
            from persisty_data.chunk.chunk_data_store import ChunkDataStore

            options = {name: settings[name] for name in ("chunk_size",) if name in settings}
            if settings["url"] == "mem":
                from persisty.impl.mem.mem_store_factory import MemStoreFactory

                # A MemStoreFactory makes one store: item rows and chunk rows need one each.
                items, chunks = MemStoreFactory(triggers=False), MemStoreFactory(triggers=False)
                return ChunkDataStore(self.name, items, chunk_store_factory=chunks, **limits, **options)
            from persisty_data.chunk.sql_store_factory import SqlStoreFactory

            return ChunkDataStore(self.name, SqlStoreFactory(settings["url"]), **limits, **options)
        if self.backend == "s3":
            from persisty_data.s3.s3_data_store import S3DataStore

            arguments = {"prefix": "prefix", "endpoint_url": "endpoint_url", "region": "region_name"}
            arguments["part_size"] = "part_size"
            arguments["max_concurrency"] = "max_concurrency"
            arguments["publish_by_copy"] = "publish_by_copy"
            options = {arg: settings[name] for name, arg in arguments.items() if name in settings}
            return S3DataStore(settings["bucket"], name=self.name, **limits, **options)
        raise ConfigurationError(f"stores.{self.name}.backend: unknown backend {self.backend!r}", store_name=self.name)

    def create_security(self) -> DataStoreSecurityABC:
        if self.policy == "owned":
            from persisty_data.factory.owned_data_store_security import OwnedDataStoreSecurity

            names = ("read_by_others", "anonymous_read")
            options = {name: self.settings[name] for name in names if name in self.settings}
            return OwnedDataStoreSecurity(**options)
        from persisty.security.store_security import INTERNAL_ONLY, UNSECURED

        # persisty's StoreSecurity has the same get_access as DataStoreSecurityABC.
        return UNSECURED if self.policy == "unsecured" else INTERNAL_ONLY
