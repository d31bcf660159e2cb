"""The key rules, identical on every backend."""

import re

from persisty_data.errors import InvalidKeyError

MAX_KEY_BYTES = 1024  # S3's limit, applied everywhere so items can move between backends
MAX_SEGMENT_BYTES = 255  # NAME_MAX on common filesystems
RESERVED_SEGMENT = ".persisty_data"  # the directory store keeps temp files and metadata here


# C0 controls, DEL, C1 controls, and the backslash (a path separator on Windows)
_FORBIDDEN_CHAR = re.compile(r"[\x00-\x1f\x7f-\x9f\\]")


def validate_key(key: str) -> str:
    """
    Return key unchanged if it is valid, else raise InvalidKeyError.

    A key is a relative, '/'-separated UTF-8 string of at most MAX_KEY_BYTES bytes whose
    segments are non empty, not '.' or '..', at most MAX_SEGMENT_BYTES bytes, and free of
    control characters and backslashes. The first segment may not be RESERVED_SEGMENT.
    Spaces and any other unicode are fine.
    """
    if not isinstance(key, str):
        raise InvalidKeyError(f"key_must_be_str:{type(key).__name__}")
    if not key:
        raise InvalidKeyError("empty_key", key=key)
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidKeyError("not_utf8", key=key) from None
    if len(encoded) > MAX_KEY_BYTES:
        raise InvalidKeyError(f"longer_than_{MAX_KEY_BYTES}_bytes", key=key)
    if key.startswith("/"):
        raise InvalidKeyError("absolute_key", key=key)
    bad = _FORBIDDEN_CHAR.search(key)
    if bad is not None:
        raise InvalidKeyError(f"forbidden_character:{ord(bad.group()):#04x}", key=key)
    segments = key.split("/")
    ascii_key = len(encoded) == len(key)
    for segment in segments:
        if not segment:
            raise InvalidKeyError("empty_segment", key=key)
        if segment in (".", ".."):
            raise InvalidKeyError("dot_segment", key=key)
        if len(segment) > MAX_SEGMENT_BYTES or (
            not ascii_key and len(segment) * 4 > MAX_SEGMENT_BYTES and len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES
        ):
            raise InvalidKeyError(f"segment_longer_than_{MAX_SEGMENT_BYTES}_bytes", key=key)
    if segments[0].lower() == RESERVED_SEGMENT:
        raise InvalidKeyError("reserved_segment", key=key)
    return key


def is_valid_segment(segment: str) -> bool:
    """True if segment may be one segment of a key (a file or directory name, say)."""
    if not segment or segment in (".", "..") or _FORBIDDEN_CHAR.search(segment):
        return False
    if segment.isascii():
        return len(segment) <= MAX_SEGMENT_BYTES
    try:
        return len(segment.encode("utf-8")) <= MAX_SEGMENT_BYTES
    except UnicodeEncodeError:  # e.g. undecodable bytes in a file name
        return False


def is_valid_key(key: str) -> bool:
    try:
        validate_key(key)
        return True
    except InvalidKeyError:
        return False
