"""An item in an S3DataStore: one object version, described by its S3 ETag."""

import io
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Dict, Optional

from persisty_data.data_item import DataItem

if TYPE_CHECKING:
    from persisty_data.s3.s3_data_store import S3DataStore


def version_id(response: Dict[str, Any]) -> Optional[str]:
    """The VersionId of an S3 response, None outside a versioned bucket ("null")."""
    value = response.get("VersionId")
    return value if value and value != "null" else None


_UNSET = datetime(1970, 1, 1, tzinfo=timezone.utc)


class S3DataItem(DataItem):
    """
    Key, size and updated_at come from a listing or a HEAD. An item from a listing does
    not know its content type or etag (ListObjectsV2 does not return them): they are
    loaded with one HEAD the first time either is used, so a plain listing costs no
    request per object; a read fills them from its response (and a full read hashes
    the content when nothing else tells the etag). Once known, they stay known. An
    object written by another tool has no ``x-amz-meta-sha256``; its etag is then
    computed by streaming the object once (see S3DataStore).

    s3_etag (S3's own ETag) names the object version this item describes: readers send
    it as If-Match, so they never mix versions.

    An item returned by a write knows everything but, after a PutObject (whose response
    has no Last-Modified), its updated_at: that is loaded with one HEAD when first used,
    so a write costs one request, not two.
    """

    __slots__ = ("_store", "_s3_etag", "_version_id")

    def __init__(
        self,
        store: "S3DataStore",
        key: str,
        size: int,
        updated_at: Optional[datetime],
        s3_etag: str,
        version_id: Optional[str] = None,
        content_type: Optional[str] = None,
        etag: Optional[str] = None,
    ):
        super().__init__(key, size, content_type, etag, updated_at or _UNSET)  # type: ignore[arg-type]
        if updated_at is None:
            self._updated_at = None  # type: ignore[assignment]
        self._store = store
        self._s3_etag = s3_etag
        self._version_id = version_id

    @property
    def content_type(self) -> str:
        if self._content_type is None:
            self._store._load_content_meta(self)
        return self._content_type

    @property
    def etag(self) -> str:
        if self._etag is None:
            self._store._load_content_meta(self)
        return self._etag

    @property
    def updated_at(self) -> datetime:
        if self._updated_at is None:
            self._store._load_updated_at(self)
        return self._updated_at

    @property
    def s3_etag(self) -> str:
        """S3's ETag of the object version this item describes (quoted, as S3 sends it)."""
        return self._s3_etag

    @property
    def version_id(self) -> Optional[str]:
        """The object's version id in a versioned bucket, else None."""
        return self._version_id

    @property
    def is_loaded(self) -> bool:
        """True once content_type and etag are known without another request."""
        return self._content_type is not None and self._etag is not None

    def _open_content(self, start: int, end: int) -> io.RawIOBase:
        return self._store._open_reader(self, start, end)
