"""Content type defaults and checks shared by every backend."""

import mimetypes
import re
from functools import lru_cache
from typing import Iterable, Optional

from persisty_data.errors import ContentTypeNotPermittedError

DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_CONTENT_TYPE_LENGTH = 255
_NOT_VISIBLE_ASCII = re.compile(r"[^\x20-\x7e]")


def guess_content_type(key: str) -> str:
    """The content type implied by the key's extension, else application/octet-stream."""
    content_type, _ = mimetypes.guess_type(key, strict=False)
    return content_type or DEFAULT_CONTENT_TYPE


@lru_cache(maxsize=256)
def normalize_content_type(content_type: str) -> str:
    """Strip and lower the type/subtype, keep parameters; refuse header-breaking values."""
    value = content_type.strip()
    if (
        not value
        or len(value) > MAX_CONTENT_TYPE_LENGTH
        or _NOT_VISIBLE_ASCII.search(value)
        or "/" not in value.split(";", 1)[0]
    ):
        raise ContentTypeNotPermittedError(f"malformed_content_type:{content_type!r}")
    main, sep, params = value.partition(";")
    return main.strip().lower() + (sep + params if sep else "")


def media_type(content_type: str) -> str:
    """The type/subtype part of a content type, without parameters."""
    return content_type.split(";", 1)[0].strip().lower()


def is_permitted(content_type: str, permitted: Optional[Iterable[str]]) -> bool:
    """
    True if permitted is None, or the media type matches one of its entries.
    Entries may be exact ('image/png'), a family ('image/*') or '*/*'.
    """
    if permitted is None:
        return True
    media = media_type(content_type)
    family = media.split("/", 1)[0] + "/*"
    for entry in permitted:
        entry = entry.strip().lower()
        if entry in ("*/*", media, family):
            return True
    return False


def resolve_content_type(
    key: str,
    content_type: Optional[str],
    permitted: Optional[Iterable[str]] = None,
) -> str:
    """The content type to store: as given, else guessed; raise if not permitted."""
    resolved = normalize_content_type(content_type) if content_type else guess_content_type(key)
    if not is_permitted(resolved, permitted):
        raise ContentTypeNotPermittedError(media_type(resolved), key=key)
    return resolved
