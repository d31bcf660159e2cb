"""The key rules, identical on every backend."""

from persisty_data.errors import InvalidKeyError

MAX_KEY_BYTES = 1024  # S3's limit, applied everywhere so items can move between backends
MAX_SEGMENT_BYTES = 255  # NAME_MAX on common filesystems
RESERVED_SEGMENT = ".persisty_data"  # the directory store keeps temp files and metadata here


def _is_forbidden_char(char: str) -> bool:
    code = ord(char)
    # C0 controls, DEL, C1 controls, and the backslash (a path separator on Windows)
    return code < 0x20 or 0x7F <= code <= 0x9F or char == "\\"


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
    bad = next((c for c in key if _is_forbidden_char(c)), None)
    if bad is not None:
        raise InvalidKeyError(f"forbidden_character:{ord(bad):#04x}", key=key)
    segments = key.split("/")
    for segment in segments:
        if not segment:
            raise InvalidKeyError("empty_segment", key=key)
        if segment in (".", ".."):
            raise InvalidKeyError("dot_segment", key=key)
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise InvalidKeyError(f"segment_longer_than_{MAX_SEGMENT_BYTES}_bytes", key=key)
    if segments[0].lower() == RESERVED_SEGMENT:
        raise InvalidKeyError("reserved_segment", key=key)
    return key


def is_valid_key(key: str) -> bool:
    try:
        validate_key(key)
        return True
    except InvalidKeyError:
        return False
