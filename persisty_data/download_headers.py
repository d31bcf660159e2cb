"""How a stored item is served: its content type, inline only if it is passive, and the
headers that keep whatever is served from running in the origin that serves it."""

from typing import Dict
from urllib.parse import quote

from persisty_data.content_types import (
    DEFAULT_CONTENT_TYPE,
    INLINE_FAMILIES,
    MediaType,
    is_inline,
    parse_media_type,
)
from persisty_data.data_item_abc import DataItemABC
from persisty_data.errors import MalformedContentTypeError

# A document opened from a download has no origin, runs no script and loads nothing.
SANDBOX_CSP = "default-src 'none'; sandbox"
# A browser shows audio or video opened on its own in a media document that loads the URL
# again as media of the document's origin: it needs media-src 'self' and that origin
# (allow-same-origin). Scripts stay off: there is no allow-scripts.
MEDIA_DOCUMENT_CSP = "default-src 'none'; media-src 'self'; sandbox allow-same-origin"
# On every response of the hosted routes, errors included: no sniffing into HTML.
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": SANDBOX_CSP}


def download_headers(item: DataItemABC) -> Dict[str, str]:
    """
    The headers of a download of item, the one decision every factory follows: the hosted
    routes send them all; S3 download URLs make S3 send Content-Type and
    Content-Disposition (S3 cannot add the others). Inline only for passive types (see
    is_inline); anything else is an attachment, so a browser saves it rather than render
    it. The file name is the key's last segment, as an RFC 6266 / RFC 8187 ``filename*``.
    """
    media = _served_type(item.content_type)
    content_type = str(media)
    inline = is_inline(content_type)
    filename = quote(item.key.rsplit("/", 1)[-1], safe="")
    return {
        "Content-Type": content_type,
        "Content-Disposition": f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{filename}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": MEDIA_DOCUMENT_CSP if inline and media.type in INLINE_FAMILIES else SANDBOX_CSP,
    }


def _served_type(stored: str) -> MediaType:
    try:
        return parse_media_type(stored)
    except MalformedContentTypeError:
        # Stored by another tool or an older version: never echo it into a header.
        return parse_media_type(DEFAULT_CONTENT_TYPE)
