"""How a stored item is served: its content type, and inline only if it is passive."""

from typing import Dict
from urllib.parse import quote

from persisty_data.content_types import DEFAULT_CONTENT_TYPE, is_inline, normalize_content_type
from persisty_data.data_item_abc import DataItemABC
from persisty_data.errors import MalformedContentTypeError


def download_headers(item: DataItemABC) -> Dict[str, str]:
    """
    Content-Type and Content-Disposition for a download of item, the one decision every
    factory follows (the hosted routes send these headers; S3 URLs make S3 send them).
    Inline only for passive types (see is_inline); anything else is an attachment, so a
    browser saves it rather than render it in the origin that serves it. The file name is
    the key's last segment, as an RFC 6266 / RFC 8187 ``filename*``.
    """
    try:
        content_type = normalize_content_type(item.content_type)
    except MalformedContentTypeError:
        # Stored by another tool or an older version: never echo it into a header.
        content_type = DEFAULT_CONTENT_TYPE
    disposition = "inline" if is_inline(content_type) else "attachment"
    filename = quote(item.key.rsplit("/", 1)[-1], safe="")
    return {
        "Content-Type": content_type,
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{filename}",
    }
