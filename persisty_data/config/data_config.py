"""
DataConfig and load_config: data stores and factories from a dict or a TOML file plus
environment variables, validated as a whole at load time (see docs/configuration.md).
"""

import importlib.util
import logging
import os
import re
import secrets
import sys
import threading
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from persisty_data.config._settings import (
    DEFAULT_POLICY,
    DEFAULTS_ONLY,
    SETTINGS,
    InvalidSetting,
    check_store_name,
    env_name,
    parse_bool,
    unknown_setting,
)
from persisty_data.config.store_config import StoreConfig
from persisty_data.data_store_abc import DataStoreABC
from persisty_data.errors import ConfigurationError
from persisty_data.factory.data_store_factory_abc import DataStoreFactoryABC
from persisty_data.factory.hosted_data_store_factory import MIN_SECRET_BYTES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - depends on the Python version
    import tomli as tomllib

logger = logging.getLogger(__name__)

CONFIG_ENV = "PERSISTY_DATA_CONFIG"
SECRET_ENV = "PERSISTY_DATA_SECRET"
DEVELOPMENT_ENV = "PERSISTY_DATA_DEVELOPMENT"
STORES_ENV = "PERSISTY_DATA_STORES"
ENV_PREFIX = "PERSISTY_DATA_"
DEFAULT_CONFIG_FILE = "persisty-data.toml"
SECTIONS = ("defaults", "stores")
_SQLITE_FILE_URL = re.compile(r"^(?P<scheme>sqlite(\+\w+)?):///(?P<database>[^?]*)(?P<query>\?.*)?$", re.DOTALL)

Source = Union[str, "os.PathLike[str]", Mapping[str, Any], None]


class DataConfig:
    """
    Validated settings of every configured store. Each store's factory (and the store
    inside it) is built on first use and then shared; settings were all checked by
    load_config, so building fails only on what needs the backend itself (a database
    that cannot be reached...).
    """

    def __init__(self, stores: Iterable[StoreConfig], source: Optional[str] = None, development: bool = False):
        self.stores: Dict[str, StoreConfig] = {store.name: store for store in stores}
        self.source = source  # the TOML file read, if any
        self.development = development
        self._factories: Dict[str, DataStoreFactoryABC] = {}
        self._lock = threading.Lock()

    @property
    def store_names(self) -> List[str]:
        """Store names, in file order, then those declared by PERSISTY_DATA_STORES only."""
        return list(self.stores)

    @property
    def factories(self) -> Dict[str, DataStoreFactoryABC]:
        """Every store's factory, by store name, in file order (building those not built yet)."""
        return {name: self.get_factory(name) for name in self.stores}

    def get_factory(self, name: str) -> DataStoreFactoryABC:
        """The factory of store ``name``. Raises ConfigurationError naming it if it is unknown."""
        store_config = self.stores.get(name)
        if store_config is None:
            raise ConfigurationError(self._unknown_store_message(name), store_name=name)
        with self._lock:
            factory = self._factories.get(name)
            if factory is None:
                factory = store_config.create_factory()
                self._factories[name] = factory
            return factory

    def get_store(self, name: str) -> DataStoreABC:
        """The store ``name`` with full access (no policy applied): for the CLI and internal use."""
        return self.get_factory(name).get_store()

    def _unknown_store_message(self, name: str) -> str:
        if self.stores:
            return f"unknown store {name!r} (configured: {', '.join(self.stores)})"
        where = f"in {self.source}" if self.source else f"(no {DEFAULT_CONFIG_FILE}, {CONFIG_ENV} or {STORES_ENV})"
        return f"unknown store {name!r}: no stores are configured {where}"

    def __repr__(self) -> str:
        return f"DataConfig(stores={list(self.stores)!r}, source={self.source!r})"


def load_config(source: Source = None, env: Mapping[str, str] = os.environ) -> DataConfig:
    """
    Read and validate the configuration. source: a path to a TOML file, a dict of the same
    structure, or None for the file named by PERSISTY_DATA_CONFIG, else
    ./persisty-data.toml if it exists, else no file (stores may come from env alone).
    Relative paths in a file are relative to its folder; elsewhere, to the working
    directory. Every problem raises ConfigurationError naming the store and setting.
    """
    path, data = _read_source(source, env)
    base_dir = os.path.dirname(path) if path else None
    return _Loader(data, base_dir, env).load(path)


# region: reading the source
def _read_source(source: Source, env: Mapping[str, str]) -> Tuple[Optional[str], Mapping[str, Any]]:
    if source is None:
        named = env.get(CONFIG_ENV)
        if named:
            return _read_file(named, f" (from {CONFIG_ENV})")
        if os.path.isfile(DEFAULT_CONFIG_FILE):
            return _read_file(DEFAULT_CONFIG_FILE)
        return None, {}
    if isinstance(source, Mapping):
        return None, source
    if isinstance(source, (str, os.PathLike)):
        return _read_file(os.fspath(source))
    raise ConfigurationError(f"config source must be a path, a dict or None, got {type(source).__name__}")


def _read_file(path: str, origin: str = "") -> Tuple[str, Mapping[str, Any]]:
    path = os.path.abspath(os.path.expanduser(path))
    try:
        with open(path, "rb") as file:
            return path, tomllib.load(file)
    except FileNotFoundError:
        raise ConfigurationError(f"config file not found: {path}{origin}") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read config file {path}{origin}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path}: invalid TOML: {exc}") from None


# endregion


@dataclass(frozen=True)
class _Value:
    value: Any
    label: str  # how errors name where it came from: stores.x.root (PERSISTY_DATA_X_ROOT)
    explicit: bool  # given for this store (file or env), not inherited from [defaults]
    from_file: bool  # relative paths resolve against the file's folder


_development_secret: Optional[bytes] = None
_development_lock = threading.Lock()


def _get_development_secret() -> bytes:
    """One random secret per process, for every store that lacks one in development mode."""
    global _development_secret
    with _development_lock:
        if _development_secret is None:
            _development_secret = secrets.token_bytes(MIN_SECRET_BYTES)
        return _development_secret


class _Loader:
    def __init__(self, data: Mapping[str, Any], base_dir: Optional[str], env: Mapping[str, str]):
        self.data = data
        self.base_dir = base_dir
        self.env = env

    def load(self, path: Optional[str]) -> DataConfig:
        if not isinstance(self.data, Mapping):
            raise ConfigurationError(f"the configuration must be a table, got {type(self.data).__name__}")
        for section in self.data:
            if section not in SECTIONS:
                raise ConfigurationError(f"{section}: unknown section (expected one of: {', '.join(SECTIONS)})")
        defaults = self._table(self.data.get("defaults", {}), "defaults")
        file_stores = self._table(self.data.get("stores", {}), "stores")
        development = self._development(defaults)
        default_values = self._defaults(defaults)
        names = self._store_names(file_stores)
        env_values = self._env_values(names)
        stores = [
            self._store(name, file_stores.get(name, {}), default_values, env_values.get(name, {}), development)
            for name in names
        ]
        return DataConfig(stores, path, development)

    @staticmethod
    def _table(value: Any, label: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise ConfigurationError(f"{label}: must be a table, got {type(value).__name__}")
        return value

    def _development(self, defaults: Mapping[str, Any]) -> bool:
        development = False
        if "development" in defaults:
            development = _parse(DEFAULTS_ONLY["development"], defaults["development"], "defaults.development", False)
        if self.env.get(DEVELOPMENT_ENV) is not None:
            development = _parse(parse_bool, self.env[DEVELOPMENT_ENV], DEVELOPMENT_ENV, True)
        return development

    def _defaults(self, defaults: Mapping[str, Any]) -> Dict[str, _Value]:
        values = {}
        for name, value in defaults.items():
            if name in DEFAULTS_ONLY:
                continue
            if name not in SETTINGS:
                raise ConfigurationError(f"defaults.{name}: {unknown_setting(name, [*SETTINGS, *DEFAULTS_ONLY])}")
            label = f"defaults.{name}"
            values[name] = _Value(_parse(SETTINGS[name].parse, value, label, False), label, False, True)
        return values

    def _store_names(self, file_stores: Mapping[str, Any]) -> List[str]:
        names: List[str] = []
        for name in file_stores:
            problem = check_store_name(name)
            if problem:
                raise ConfigurationError(f"stores.{name}: {problem}")
            names.append(name)
        for name in (n.strip() for n in self.env.get(STORES_ENV, "").split(",")):
            if not name or name in names:
                continue
            problem = check_store_name(name)
            if problem:
                raise ConfigurationError(f"{STORES_ENV}: {problem}", store_name=name)
            names.append(name)
        seen: Dict[str, str] = {}
        for name in names:
            other = seen.setdefault(env_name(name), name)
            if other != name:
                raise ConfigurationError(
                    f"stores.{name}: same environment name {ENV_PREFIX}{env_name(name)}_* as store {other!r}",
                    store_name=name,
                )
        return names

    def _env_values(self, names: List[str]) -> Dict[str, Dict[str, _Value]]:
        """PERSISTY_DATA_<STORE>_<SETTING> for the known stores (longest store name first)."""
        by_env = sorted(((env_name(n), n) for n in names), key=lambda pair: len(pair[0]), reverse=True)
        values: Dict[str, Dict[str, _Value]] = {}
        for var in sorted(self.env):
            if not var.startswith(ENV_PREFIX):
                continue
            rest = var[len(ENV_PREFIX) :]
            unknown: Optional[Tuple[str, str]] = None
            for store_env, name in by_env:
                if not rest.startswith(store_env + "_"):
                    continue
                setting = rest[len(store_env) + 1 :].lower()
                if setting in SETTINGS:
                    label = f"stores.{name}.{setting} ({var})"
                    parsed = _parse(SETTINGS[setting].parse, self.env[var], label, True)
                    values.setdefault(name, {})[setting] = _Value(parsed, label, True, False)
                    unknown = None
                    break
                if setting in DEFAULTS_ONLY:
                    raise ConfigurationError(
                        f"{var}: {setting} is not per store: use {DEVELOPMENT_ENV}", store_name=name
                    )
                unknown = unknown or (name, setting)
            if unknown is not None:
                name, setting = unknown
                raise ConfigurationError(
                    f"stores.{name}.{setting} ({var}): {unknown_setting(setting, SETTINGS)}", store_name=name
                )
        return values

    def _store(
        self,
        name: str,
        table: Any,
        defaults: Dict[str, _Value],
        env_values: Dict[str, _Value],
        development: bool,
    ) -> StoreConfig:
        table = self._table(table, f"stores.{name}")
        values: Dict[str, _Value] = dict(defaults)
        for setting, value in table.items():
            label = f"stores.{name}.{setting}"
            if setting in DEFAULTS_ONLY:
                raise ConfigurationError(f"{label}: only in [defaults] or {DEVELOPMENT_ENV}", store_name=name)
            if setting not in SETTINGS:
                raise ConfigurationError(f"{label}: {unknown_setting(setting, SETTINGS)}", store_name=name)
            values[setting] = _Value(_parse(SETTINGS[setting].parse, value, label, False), label, True, True)
        values.update(env_values)

        if "backend" not in values:
            raise ConfigurationError(f"stores.{name}.backend: required (directory, chunk or s3)", store_name=name)
        backend = values.pop("backend").value
        default_factory = "s3" if backend == "s3" else "hosted"
        factory_value = values.pop("factory", None)
        factory = factory_value.value if factory_value else default_factory
        if factory == "s3" and backend != "s3":
            assert factory_value is not None
            if factory_value.explicit:
                raise ConfigurationError(
                    f"{factory_value.label}: factory 's3' needs backend 's3'; this store's backend is {backend!r}",
                    store_name=name,
                )
            factory = default_factory  # defaults.factory = "s3" is meant for the s3 stores
        policy_value = values.pop("policy", None)
        policy = policy_value.value if policy_value else DEFAULT_POLICY
        applies = {"backend": backend, "factory": factory, "policy": policy}

        settings: Dict[str, Any] = {}
        secret_value: Optional[_Value] = None
        for setting, value in values.items():
            spec = SETTINGS[setting]
            for kind, actual in applies.items():
                allowed = spec.applies_to(kind)
                if allowed is not None and actual not in allowed:
                    if not value.explicit:
                        break  # a default meant for other kinds of stores
                    raise ConfigurationError(
                        f"{value.label}: only for {kind} {', '.join(repr(a) for a in sorted(allowed))}; "
                        f"this store's {kind} is {actual!r}",
                        store_name=name,
                    )
            else:
                if setting == "secret":
                    secret_value = value
                else:
                    settings[setting] = self._resolve(setting, value, name)

        required = {"directory": "root", "chunk": "url", "s3": "bucket"}[backend]
        if required not in settings:
            raise ConfigurationError(f"stores.{name}.{required}: required for backend {backend!r}", store_name=name)
        if backend == "s3" and importlib.util.find_spec("boto3") is None:
            raise ConfigurationError(
                f"stores.{name}.backend: 's3' needs boto3: pip install 'persisty-data[s3]'", store_name=name
            )
        secret = self._secret(name, secret_value, development) if factory == "hosted" else None
        return StoreConfig(name, backend, factory, policy, settings, secret)

    def _resolve(self, setting: str, value: _Value, store_name: str) -> Any:
        """Local paths made absolute, against the config file's folder for values from it."""
        if setting == "root":
            root = self._absolute(value.value, value.from_file)
            if os.path.exists(root) and not os.path.isdir(root):
                raise ConfigurationError(f"{value.label}: not a directory: {root}", store_name=store_name)
            return root
        if setting == "url" and value.value != "mem":
            return self._absolute_sqlite_url(value.value, value.from_file)
        return value.value

    def _absolute(self, path: str, from_file: bool) -> str:
        path = os.path.expanduser(path)
        if from_file and self.base_dir and not os.path.isabs(path):
            path = os.path.join(self.base_dir, path)
        return os.path.abspath(path)

    def _absolute_sqlite_url(self, url: str, from_file: bool) -> str:
        match = _SQLITE_FILE_URL.match(url)
        if not match:
            return url
        database = match["database"]
        if not database or database == ":memory:" or database.startswith("file:") or os.path.isabs(database):
            return url
        return f"{match['scheme']}:///{self._absolute(database, from_file)}{match['query'] or ''}"

    def _secret(self, name: str, value: Optional[_Value], development: bool) -> bytes:
        label = f"stores.{name}.secret"
        origin = ""  # where an inherited secret came from
        if value is not None:
            secret: Optional[str] = value.value
            if value.explicit:
                label = value.label
            else:
                origin = f" (from {value.label})"
        else:
            secret = self.env.get(SECRET_ENV)
            origin = f" (from {SECRET_ENV})"
        if secret is None:
            problem = f"missing: set {label}, defaults.secret or {SECRET_ENV} (at least {MIN_SECRET_BYTES} bytes)"
        else:
            size = len(secret.encode("utf-8"))
            problem = (
                "" if size >= MIN_SECRET_BYTES else f"must be at least {MIN_SECRET_BYTES} bytes, got {size}{origin}"
            )
        if not problem:
            assert secret is not None
            return secret.encode("utf-8")
        if not development:
            raise ConfigurationError(f"{label}: {problem}", store_name=name)
        logger.warning(
            "%s: %s; development mode: using a random secret for this process "
            "(forms and URLs stop working when it restarts)",
            label,
            problem,
        )
        return _get_development_secret()


def _parse(parser: Any, value: Any, label: str, from_env: bool) -> Any:
    try:
        return parser(value, from_env)
    except InvalidSetting as exc:
        store_name = label.split(".")[1] if label.startswith("stores.") else None
        raise ConfigurationError(f"{label}: {exc}", store_name=store_name) from None
