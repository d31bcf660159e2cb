"""
Content types: one strict parser (RFC 9110 media types) and the decisions taken on its
result (is a type permitted by a store, may it be shown inline by a browser).

Every content type that enters the library (writers, copies, upload forms, posted form
fields, configuration, the command line) goes through parse_media_type or
parse_media_range: checks then run on the parsed type and subtype, never on the raw
string, so ``image/png,text/html`` cannot pass for an image.
"""

import mimetypes
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Optional, Tuple

from persisty_data.errors import ContentTypeNotPermittedError, MalformedContentTypeError

DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_CONTENT_TYPE_LENGTH = 255

# RFC 9110 5.6.2: token = 1*tchar
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
# RFC 9110 5.6.4, without obs-text: only ASCII reaches a stored type or a header.
_QUOTED_STRING = r'"(?:[\t !#-\[\]-~]|\\[\t -~])*"'
_OWS = r"[ \t]*"
_TYPE = re.compile(rf"({_TOKEN})/({_TOKEN})")
_PARAMETER = re.compile(rf"{_OWS};{_OWS}({_TOKEN})=({_TOKEN}|{_QUOTED_STRING})")
_IS_TOKEN = re.compile(_TOKEN)
_QUOTED_PAIR = re.compile(r"\\(.)")

# Shown inline only if known to be passive: none of these can run script or load other
# documents. SVG is an image that runs script; it is not here.
INLINE_IMAGE_TYPES = frozenset({"png", "jpeg", "gif", "webp", "avif", "bmp"})
INLINE_FAMILIES = frozenset({"audio", "video"})
# UTF-7 lets text decode into markup in some user agents.
_UNSAFE_TEXT_CHARSETS = frozenset({"utf-7", "unicode-1-1-utf-7", "csunicode11utf7"})


@dataclass(frozen=True)
class MediaType:
    """A parsed media type: type and subtype lower case, parameter names lower case."""

    type: str
    subtype: str
    parameters: Tuple[Tuple[str, str], ...] = ()

    @property
    def essence(self) -> str:
        """type/subtype, without parameters."""
        return f"{self.type}/{self.subtype}"

    def parameter(self, name: str) -> Optional[str]:
        return next((value for key, value in self.parameters if key == name), None)

    def __str__(self) -> str:
        return self.essence + "".join(f"; {name}={_quote(value)}" for name, value in self.parameters)


def parse_media_type(value: str) -> MediaType:
    """
    Parse ``type "/" subtype *( OWS ";" OWS parameter )`` (RFC 9110 8.3.1): type, subtype
    and parameter names are tokens, values tokens or quoted strings. Nothing else is
    accepted: no list (commas), no second type, no empty parameter, no control character,
    no wildcard, no repeated parameter.

    :raises MalformedContentTypeError: for anything else.
    """
    if not isinstance(value, str):
        raise MalformedContentTypeError(f"not_a_string:{type(value).__name__}")
    return _parse_media_type(value)


@lru_cache(maxsize=512)
def _parse_media_type(value: str) -> MediaType:
    if len(value) > MAX_CONTENT_TYPE_LENGTH:
        raise MalformedContentTypeError(f"longer_than_{MAX_CONTENT_TYPE_LENGTH}_characters")
    text = value.strip(" \t")
    match = _TYPE.match(text)
    if match is None:
        raise MalformedContentTypeError(f"expected_type_slash_subtype:{value!r}")
    main, sub = match.group(1).lower(), match.group(2).lower()
    if main == "*" or sub == "*":
        raise MalformedContentTypeError(f"wildcard_is_not_a_content_type:{value!r}")
    parsed = MediaType(main, sub, _parse_parameters(value, text, match.end()))
    if len(str(parsed)) > MAX_CONTENT_TYPE_LENGTH:  # the canonical form is what gets stored
        raise MalformedContentTypeError(f"longer_than_{MAX_CONTENT_TYPE_LENGTH}_characters")
    return parsed


def _parse_parameters(value: str, text: str, position: int) -> Tuple[Tuple[str, str], ...]:
    parameters = []
    names = set()
    while position < len(text):
        match = _PARAMETER.match(text, position)
        if match is None:
            raise MalformedContentTypeError(f"malformed_at_{position}:{value!r}")
        name, raw = match.group(1).lower(), match.group(2)
        if name in names:
            raise MalformedContentTypeError(f"repeated_parameter_{name}:{value!r}")
        names.add(name)
        parameters.append((name, _QUOTED_PAIR.sub(r"\1", raw[1:-1]) if raw.startswith('"') else raw))
        position = match.end()
    return tuple(parameters)


def _quote(value: str) -> str:
    if _IS_TOKEN.fullmatch(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def normalize_content_type(content_type: str) -> str:
    """
    The content type in one canonical form: type/subtype and parameter names lower case,
    ``; `` between parameters, values quoted only where they must be.

    :raises MalformedContentTypeError: if it is not a media type (see parse_media_type).
    """
    return str(parse_media_type(content_type))


def media_type(content_type: str) -> str:
    """The type/subtype part of a content type, without parameters."""
    return parse_media_type(content_type).essence


def parse_media_range(value: str) -> str:
    """
    An entry of a list of permitted content types: ``type/subtype``, ``type/*`` or
    ``*/*`` (no parameters), lower case.

    :raises MalformedContentTypeError: for anything else.
    """
    if not isinstance(value, str):
        raise MalformedContentTypeError(f"not_a_string:{type(value).__name__}")
    match = _TYPE.fullmatch(value.strip(" \t"))
    if match is None:
        raise MalformedContentTypeError(f"expected_type_slash_subtype_or_wildcard:{value!r}")
    main, sub = match.group(1).lower(), match.group(2).lower()
    # '*' stands for a whole type or subtype, and a wildcard type needs a wildcard subtype.
    wild_main, wild_sub = main == "*", sub == "*"
    if ("*" in main and not wild_main) or ("*" in sub and not wild_sub) or (wild_main and not wild_sub):
        raise MalformedContentTypeError(f"misplaced_wildcard:{value!r}")
    return f"{main}/{sub}"


def guess_content_type(key: str) -> str:
    """The content type implied by the key's extension, else application/octet-stream."""
    content_type, _ = mimetypes.guess_type(key, strict=False)
    return content_type or DEFAULT_CONTENT_TYPE


def is_permitted(content_type: str, permitted: Optional[Iterable[str]]) -> bool:
    """
    True if permitted is None, or the media type matches one of its entries.
    Entries may be exact ('image/png'), a family ('image/*') or '*/*'.

    :raises MalformedContentTypeError: if content_type or an entry is malformed.
    """
    if permitted is None:
        return True
    parsed = parse_media_type(content_type)
    accepted = (parsed.essence, f"{parsed.type}/*", "*/*")
    return any(parse_media_range(entry) in accepted for entry in permitted)


def resolve_content_type(
    key: str,
    content_type: Optional[str],
    permitted: Optional[Iterable[str]] = None,
) -> str:
    """
    The content type to store, in canonical form: as given, else guessed from the key.

    :raises MalformedContentTypeError: if the given content type is not a media type.
    :raises ContentTypeNotPermittedError: if it is not among the permitted ones.
    """
    try:
        resolved = normalize_content_type(content_type) if content_type else guess_content_type(key)
    except MalformedContentTypeError as exc:
        raise MalformedContentTypeError(exc.detail, key=key) from None
    if not is_permitted(resolved, permitted):
        raise ContentTypeNotPermittedError(media_type(resolved), key=key)
    return resolved


def is_inline(content_type: str) -> bool:
    """
    True if a browser may show the content type in place: raster images (not SVG), audio,
    video, and text/plain that names its charset. Everything else, including anything
    malformed, is downloaded as an attachment.
    """
    try:
        parsed = parse_media_type(content_type)
    except MalformedContentTypeError:
        return False
    if parsed.type == "image":
        return parsed.subtype in INLINE_IMAGE_TYPES
    if parsed.type in INLINE_FAMILIES:
        return True
    if parsed.essence == "text/plain":
        charset = (parsed.parameter("charset") or "").lower()
        return bool(charset) and charset not in _UNSAFE_TEXT_CHARSETS
    return False
