"""The settings of a store: their types, where they apply, and how their values parse."""

import difflib
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Tuple
from urllib.parse import urlsplit

from persisty_data.chunk.chunk_data_store import MIN_CHUNK_SIZE
from persisty_data.content_types import parse_media_range
from persisty_data.errors import MalformedContentTypeError
from persisty_data.factory.data_store_factory_abc import MAX_EXPIRY
from persisty_data.keys import MAX_KEY_BYTES, is_valid_key

BACKENDS = ("directory", "chunk", "s3")
FACTORIES = ("hosted", "s3")
POLICIES = ("owned", "unsecured", "internal")
DEFAULT_POLICY = "owned"

# S3's own limits (duplicated here: importing persisty_data.s3 needs boto3).
S3_MIN_PART_SIZE = 5 * 1024 * 1024
S3_MAX_PART_SIZE = 5 * 1024**3
S3_MAX_CONCURRENCY = 64  # as S3DataStore (not imported: boto3 is optional)
MAX_EXPIRY_SECONDS = int(MAX_EXPIRY.total_seconds())

STORE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_PATH_SEGMENT = r"[A-Za-z0-9._~-]+"
_PATH_PREFIX = re.compile(rf"^/?({_PATH_SEGMENT}(/{_PATH_SEGMENT})*)?/?$")
SQL_URL = re.compile(r"^(?P<dialect>[A-Za-z][A-Za-z0-9_]*)(\+(?P<driver>[A-Za-z0-9_]+))?://(?P<rest>.*)$", re.DOTALL)
_SQL_DIALECTS = frozenset({"firebird", "mariadb", "mssql", "mysql", "oracle", "postgresql", "sqlite", "sybase"})
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class InvalidSetting(Exception):
    """A value does not fit its setting; the message reads after ``<setting>: ``."""


Parser = Callable[[Any, bool], Any]  # (value, from_env) -> parsed value


@dataclass(frozen=True)
class Setting:
    name: str
    parse: Parser
    backends: Optional[FrozenSet[str]] = None  # None: every backend
    factories: Optional[FrozenSet[str]] = None  # None: every factory
    policies: Optional[FrozenSet[str]] = None  # None: every policy

    def applies_to(self, kind: str) -> Optional[FrozenSet[str]]:
        """The backends / factories / policies (kind: backend, factory, policy) it is for; None: all."""
        return {"backend": self.backends, "factory": self.factories, "policy": self.policies}[kind]


# region: parsers
def _describe(value: Any) -> str:
    return repr(value) if isinstance(value, (str, int, float, bool)) else type(value).__name__


def _choice(*options: str) -> Parser:
    def parse(value: Any, from_env: bool) -> str:
        if from_env and isinstance(value, str):
            value = value.strip().lower()
        if value not in options:
            raise InvalidSetting(f"must be one of {', '.join(options)}; got {_describe(value)}")
        return value

    return parse


def _int(minimum: int, maximum: Optional[int] = None, hint: str = "") -> Parser:
    expected = f"an integer >= {minimum}" if maximum is None else f"an integer from {minimum} to {maximum}"

    def parse(value: Any, from_env: bool) -> int:
        if from_env and isinstance(value, str) and re.fullmatch(r"\s*\+?\d+\s*", value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise InvalidSetting(f"must be {expected}{hint}, got {_describe(value)}")
        if maximum is not None and value > maximum:
            raise InvalidSetting(f"must be {expected}{hint}, got {_describe(value)}")
        return value

    return parse


def parse_bool(value: Any, from_env: bool) -> bool:
    if from_env and isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise InvalidSetting(f"must be a boolean (1/0/true/false/yes/no), got {_describe(value)}")
    if not isinstance(value, bool):
        raise InvalidSetting(f"must be a boolean (true or false), got {_describe(value)}")
    return value


def _str(check: Optional[Callable[[str], Optional[str]]] = None, allow_empty: bool = True) -> Parser:
    """check returns a problem (message) or None."""

    def parse(value: Any, from_env: bool) -> str:
        if not isinstance(value, str):
            raise InvalidSetting(f"must be a string, got {_describe(value)}")
        if not value and not allow_empty:
            raise InvalidSetting("must not be empty")
        problem = check(value) if check is not None and value else None
        if problem:
            raise InvalidSetting(problem)
        return value

    return parse


def _parse_secret(value: Any, from_env: bool) -> str:
    if not isinstance(value, str):  # never echo the value: it may be a secret gone astray
        raise InvalidSetting(f"must be a string, got {type(value).__name__}")
    return value


def _parse_content_types(value: Any, from_env: bool) -> Tuple[str, ...]:
    if isinstance(value, str):
        entries: List[Any] = [v.strip() for v in value.split(",")]
        entries = [e for e in entries if e]
    elif isinstance(value, (list, tuple)):
        entries = list(value)
    else:
        raise InvalidSetting(f"must be a list of content types (or a comma separated string), got {_describe(value)}")
    result = []
    for entry in entries:
        if not isinstance(entry, str):
            raise InvalidSetting(f"must contain only strings, got {_describe(entry)}")
        try:
            result.append(parse_media_range(entry))
        except MalformedContentTypeError:
            raise InvalidSetting(f"{entry!r} is not a content type ('type/subtype', 'type/*' or '*/*')") from None
    return tuple(result)


def _http_url(path_allowed: bool) -> Callable[[str], Optional[str]]:
    def check(value: str) -> Optional[str]:
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError as exc:
            return f"must be an http(s) URL, got {value!r} ({exc})"
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"must be an http(s) URL, got {value!r}"
        if parts.query or parts.fragment or (parts.path.strip("/") and not path_allowed):
            parts_refused = "query" if path_allowed else "path, query"
            return f"must be an http(s) URL without {parts_refused} or fragment, got {value!r}"
        return None

    return check


def _check_sql_url(value: str) -> Optional[str]:
    # Checked without importing SQLAlchemy (a third of a second): the engine itself is
    # created when the store is first used.
    if value == "mem":
        return None
    match = SQL_URL.match(value)
    if not match:
        return f"must be 'mem' or an SQL URL such as 'sqlite:///data/files.db', got {mask_url(value)!r}"
    dialect = match["dialect"].lower()
    if dialect not in _SQL_DIALECTS and not _dialect_installed(dialect):
        return f"unknown SQL dialect {dialect!r} in {mask_url(value)!r}"
    return None


def _dialect_installed(dialect: str) -> bool:
    from importlib.metadata import entry_points

    found = entry_points(group="sqlalchemy.dialects")
    return any(e.name == dialect or e.name.startswith(dialect + ".") for e in found)


def mask_url(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"^([^:/?#]+://[^:/@]*):[^@/]*@", r"\1:***@", url)


def _check_prefix(value: str) -> Optional[str]:
    folder = value[:-1] if value.endswith("/") else value
    if not is_valid_key(folder) or len(folder.encode("utf-8")) >= MAX_KEY_BYTES:
        return f"must be '' or a folder that follows the key rules, such as 'uploads/', got {value!r}"
    return None


def _check_bucket(value: str) -> Optional[str]:
    if any(c.isspace() or c == "/" for c in value):
        return f"must be a bucket name, got {value!r}"
    return None


def _check_path_prefix(value: str) -> Optional[str]:
    if not _PATH_PREFIX.match(value):
        return f"must be a URL path such as '/data' (letters, digits, '.', '_', '~', '-'), got {value!r}"
    return None


def _check_region(value: str) -> Optional[str]:
    if not re.fullmatch(r"[a-z0-9-]+", value):
        return f"must be a region name such as 'us-east-1', got {value!r}"
    return None


# endregion

_DIRECTORY = frozenset({"directory"})
_CHUNK = frozenset({"chunk"})
_S3 = frozenset({"s3"})
_HOSTED = frozenset({"hosted"})
_OWNED = frozenset({"owned"})
_EXPIRY = _int(1, MAX_EXPIRY_SECONDS, " (seconds)")

SETTINGS: Dict[str, Setting] = {
    s.name: s
    for s in (
        Setting("backend", _choice(*BACKENDS)),
        Setting("root", _str(allow_empty=False), backends=_DIRECTORY),
        Setting("fsync", parse_bool, backends=_DIRECTORY),
        Setting("url", _str(_check_sql_url, allow_empty=False), backends=_CHUNK),
        Setting("chunk_size", _int(MIN_CHUNK_SIZE), backends=_CHUNK),
        Setting("bucket", _str(_check_bucket, allow_empty=False), backends=_S3),
        Setting("prefix", _str(_check_prefix), backends=_S3),
        Setting("endpoint_url", _str(_http_url(path_allowed=True), allow_empty=False), backends=_S3),
        Setting("region", _str(_check_region, allow_empty=False), backends=_S3),
        Setting("part_size", _int(S3_MIN_PART_SIZE, S3_MAX_PART_SIZE), backends=_S3),
        Setting("max_concurrency", _int(1, S3_MAX_CONCURRENCY), backends=_S3),
        Setting("publish_by_copy", parse_bool, backends=_S3),
        Setting("max_item_size", _int(1, hint=" (omit it for no limit)")),
        Setting("permitted_content_types", _parse_content_types),
        Setting("upload_expiry", _EXPIRY),
        Setting("download_expiry", _EXPIRY),
        Setting("policy", _choice(*POLICIES)),
        Setting("read_by_others", parse_bool, policies=_OWNED),
        Setting("anonymous_read", parse_bool, policies=_OWNED),
        Setting("factory", _choice(*FACTORIES)),
        Setting("secret", _parse_secret, factories=_HOSTED),
        Setting("base_url", _str(_http_url(path_allowed=True)), factories=_HOSTED),
        Setting("path_prefix", _str(_check_path_prefix), factories=_HOSTED),
    )
}

# Only in [defaults] (or PERSISTY_DATA_DEVELOPMENT): one mode for the whole process.
DEFAULTS_ONLY = {"development": parse_bool}


def unknown_setting(name: Any, known: Any) -> str:
    message = "unknown setting"
    if isinstance(name, str):
        close = difflib.get_close_matches(name, list(known), n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
    return message


def check_store_name(name: Any) -> Optional[str]:
    """A problem with a store name, or None."""
    if not isinstance(name, str) or not STORE_NAME.match(name):
        return (
            f"invalid store name {_describe(name)}: use 1 to 64 letters, digits, '_' or '-', "
            "starting with a letter or digit"
        )
    return None


def env_name(store_name: str) -> str:
    """The store's part of PERSISTY_DATA_<STORE>_<SETTING>."""
    return store_name.upper().replace("-", "_")
