"""
Stores items as objects in one S3 bucket (AWS S3 or any S3-compatible endpoint).

Design notes (the choices S3 forces, and why):

- Key ``a/b.txt`` is the object ``prefix + "a/b.txt"``. Objects under the prefix whose
  remaining key breaks the key rules (``x//y``, folder markers ending in ``/``...) are
  not items: they are skipped by listings and unreachable by key.

- etag: the SHA-256 hex of the content, as on every backend. A single PutObject (content
  up to one part) carries it as metadata (``x-amz-meta-sha256``) plus ChecksumSHA256, so
  S3 verifies the bytes. A multipart upload must fix its metadata at
  CreateMultipartUpload, before the content (and so its hash) is known, and S3's
  full-object checksums exist only for CRC algorithms. So a multipart upload goes
  straight to the item's key, tagged ``persisty-data-sha256=pending``; each part carries
  its ChecksumCRC32 (S3 checks every part; CRC-32 costs both ends far less than SHA-256,
  which the client computes once, for the whole content); CompleteMultipartUpload
  replaces the old object in one step; then PutObjectTagging (on that version, in a
  versioned bucket) sets ``persisty-data-sha256`` and ``persisty-data-s3-etag`` (the S3 ETag the hash belongs
  to). No byte is copied again and the key changes exactly once. Readers trust the tag
  only when its S3 ETag is the object's own (two racing writers may tag each other's
  object; HEAD's TagCount says whether to look at all), wait a moment (at most 2 s) for
  an object completed less than a minute ago that is still pending, and otherwise hash
  the content like an object from another tool. Tagging needs s3:PutObjectTagging /
  s3:GetObjectTagging; endpoints without tagging (501) switch the store to
  ``publish_by_copy`` by themselves.

  ``publish_by_copy=True`` is the other way: the upload goes to a unique temporary key in
  ``<prefix>.persisty_data/uploads/``, is completed, and published with one server-side
  copy (CopyObject, MetadataDirective REPLACE with the content type and the hash;
  UploadPartCopy above copy_part_size); the temporary object (its version) is then
  deleted. The hash is then metadata, like a PutObject's, but S3 copies every large
  object once more (moto: as long as the upload itself), and a process that dies between
  completion and deletion leaves a temporary object (remove_stale_uploads() or a
  lifecycle rule collects them, as for incomplete multipart uploads). It does not rely
  on x-amz-copy-source-if-match, which moto ignores; where S3 reports the checksum of a
  copy, it is checked against the hash.

  Objects written by other tools have no sha256 metadata: their etag is computed when
  first used by streaming the object once (with If-Match), cached in the process, and
  saved back with an in-place copy that keeps their content type, metadata, caching and
  encryption headers and storage class (save_computed_etags=True; skipped in versioned
  buckets, where it would add a version). The saved copy bumps LastModified.

- Listing: ListObjectsV2 returns key, size, LastModified and S3's ETag, not the content
  type or our sha256. Items from a listing load both with one HEAD, only when one of
  them is first accessed (S3DataItem). A search whose filter or order uses
  content_type or etag HEADs each listed object (it needs them); a plain or key-prefix
  listing never does.

- Paging: a key-prefix filter becomes ListObjectsV2's Prefix. The opaque page key holds
  the last key listed, sent back as StartAfter; within one page or search_all the store
  follows ContinuationToken. An unordered, prefix-only search is one ListObjectsV2 call
  per page with MaxKeys = limit and next_page_key None exactly when S3 says the listing
  is not truncated. Ordered searches sort all matches and page by offset, like the other
  backends.

- Reads stream the body with If-Match = the item's S3 ETag (a replaced or deleted object
  gives ContentChangedError, never a mix of versions), and the response's ETag must be
  that ETag too: some endpoints and proxies ignore If-Match. A range read sends a Range
  header for just those bytes, and the response length is checked. The response's
  content type and sha256 metadata belong to the item's version, so a read fills what
  the item did not know; a full read of an object without a known hash hashes the bytes
  as they stream. Once read, an item's etag never depends on the object still being there.

- Delete: DeleteObject answers 204 whether or not there was an object, so the store
  HEADs first and deletes with If-Match = that ETag (S3 conditional deletes). Of two
  concurrent deletes only one returns True; a delete racing a write retries with the new
  version. In a versioned bucket the delete adds a delete marker, and a key whose
  current version is a delete marker counts as missing. Endpoints without conditional
  deletes (501 NotImplemented) fall back to HEAD + DeleteObject.

- Errors: see s3_errors.map_s3_errors. A missing bucket is a ConfigurationError.
"""

import base64
import hashlib
import io
import logging
import math
import re
import threading
import time
import uuid
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple

from botocore.exceptions import ClientError
from persisty.attr.attr_filter import AttrFilter
from persisty.result_set import ResultSet
from persisty.search_filter.and_filter import And
from persisty.search_filter.exclude_all import EXCLUDE_ALL
from persisty.search_filter.include_all import INCLUDE_ALL
from persisty.search_filter.not_filter import Not
from persisty.search_filter.or_filter import Or
from persisty.search_filter.search_filter_abc import SearchFilterABC
from persisty.search_order.search_order import SearchOrder

from persisty_data import search
from persisty_data.content_types import guess_content_type, normalize_content_type
from persisty_data.data_item_abc import DataItemABC
from persisty_data.data_store_abc import DataStoreABC, DataStoreMeta, create_data_store_meta
from persisty_data.errors import (
    ConfigurationError,
    ContentChangedError,
    ContentCorruptedError,
    ForbiddenError,
    InvalidKeyError,
    ItemTooLargeError,
    PersistyDataError,
    StorageError,
)
from persisty_data.gc_report import GcReport
from persisty_data.keys import MAX_KEY_BYTES, RESERVED_SEGMENT, is_valid_key, validate_key
from persisty_data.lazy_thread_pool import LazyThreadPool
from persisty_data.readers import IterReader
from persisty_data.s3.s3_data_item import S3DataItem
from persisty_data.s3.s3_data_item import version_id as _version_id
from persisty_data.s3.s3_data_writer import MAX_PART_SIZE, MAX_PARTS, S3DataWriter
from persisty_data.s3.s3_errors import (
    FORBIDDEN_CODES,
    MISSING_BUCKET_CODES,
    NO_SUCH_UPLOAD_CODES,
    NOT_FOUND_CODES,
    NOT_IMPLEMENTED_CODES,
    PRECONDITION_CODES,
    error_code,
    map_s3_errors,
)
from persisty_data.search import KeyPrefixFilter

logger = logging.getLogger(__name__)

MIN_PART_SIZE = 5 * 1024 * 1024  # S3 refuses smaller parts (except the last)
DEFAULT_PART_SIZE = 8 * 1024 * 1024
# Parts of one multipart upload sent at once. Each holds a part in memory: with the
# defaults a large write buffers at most 5 x 8 MiB.
DEFAULT_MAX_CONCURRENCY = 4
MAX_CONCURRENCY = 64
MAX_COPY_OBJECT_SIZE = 5 * 1024**3  # CopyObject's limit; larger objects need UploadPartCopy
# One CopyObject up to its limit: the parts of a multipart copy go one after the other, so
# smaller parts only add requests (and, on moto, a full read of the source per part).
DEFAULT_COPY_PART_SIZE = MAX_COPY_OBJECT_SIZE
S3_MAX_KEY_BYTES = 1024
LIST_PAGE_SIZE = 1000  # S3's maximum MaxKeys
READ_CHUNK_SIZE = 256 * 1024
HASH_BUFFER_SIZE = 1024 * 1024
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
DELETE_ATTEMPTS = 5
READ_ATTEMPTS = 3
SHA256_CACHE_SIZE = 4096
RELABEL_ATTEMPTS = 3
# A multipart upload is tagged with its SHA-256 and the S3 ETag it belongs to when done.
TAG_SHA256 = "persisty-data-sha256"
TAG_S3_ETAG = "persisty-data-s3-etag"
TAG_PENDING = "pending"
PENDING_WAIT_SECONDS = 2.0
PENDING_FRESH = timedelta(minutes=1)
# With publish_by_copy, multipart uploads go to a unique key here first; no item key can
# start with it.
TEMP_FOLDER = f"{RESERVED_SEGMENT}/uploads/"
_LAZY_ATTRS = frozenset({"content_type", "etag"})
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# Headers an in-place copy with MetadataDirective=REPLACE would otherwise drop or reset.
_PRESERVED_ON_COPY = (
    "CacheControl",
    "ContentDisposition",
    "ContentEncoding",
    "ContentLanguage",
    "Expires",
    "WebsiteRedirectLocation",
    "ServerSideEncryption",
    "SSEKMSKeyId",
    "StorageClass",
)


class S3DataStore(DataStoreABC):
    """
    A DataStoreABC over one bucket, optionally inside a key prefix (a folder).

    Configure it with a boto3 ``client`` or ``session``, or with plain settings
    (``endpoint_url`` for MinIO / moto / other S3-compatible servers, ``region_name``;
    credentials come from the usual boto3 chain or the session). Clients built here sign
    with SigV4 and use botocore's standard retry mode (``max_attempts`` tries in all).
    A given client is used as is, but for presigning (see presigning_client).

    ``part_size`` (default 8 MiB, at least S3's 5 MiB) is both the largest content sent
    in one PutObject and the multipart part size. ``max_concurrency`` (default 4) parts
    of a multipart upload are sent at once on the store's upload threads while the next
    fills, so a write holds at most ``(max_concurrency + 1) * part_size`` in memory
    (40 MiB with the defaults); 1 sends them one after the other. ``copy_part_size``
    (default 5 GiB, CopyObject's limit) is the largest object copied with one
    CopyObject; larger ones are copied with UploadPartCopy in parts of that size.
    ``send_checksums`` sends a checksum with every upload (ChecksumSHA256 of a single
    PutObject, ChecksumCRC32 of each multipart part) so S3 verifies the bytes;
    turn it off for endpoints without S3's additional checksums. ``publish_by_copy``
    publishes multipart uploads with a server-side copy instead of tags (see above).
    """

    SHA256_METADATA = "sha256"  # x-amz-meta-sha256

    def __init__(
        self,
        bucket: str,
        name: Optional[str] = None,
        prefix: str = "",
        *,
        client: Any = None,
        session: Any = None,
        endpoint_url: Optional[str] = None,
        region_name: Optional[str] = None,
        part_size: int = DEFAULT_PART_SIZE,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        copy_part_size: int = DEFAULT_COPY_PART_SIZE,
        max_item_size: Optional[int] = None,
        permitted_content_types: Optional[Tuple[str, ...]] = None,
        batch_size: int = 100,
        send_checksums: bool = True,
        save_computed_etags: bool = True,
        publish_by_copy: bool = False,
        max_attempts: int = 3,
        connect_timeout: float = 10,
        read_timeout: float = 60,
        addressing_style: Optional[str] = None,
    ):
        if not bucket or not isinstance(bucket, str):
            raise ConfigurationError("bucket_required")
        self.bucket = bucket
        self.name = name or bucket
        self.prefix = _check_prefix(prefix, self.name)
        for label, size in (("part_size", part_size), ("copy_part_size", copy_part_size)):
            if not isinstance(size, int) or not MIN_PART_SIZE <= size <= MAX_PART_SIZE:
                raise ConfigurationError(
                    f"{label}_must_be_{MIN_PART_SIZE}_to_{MAX_PART_SIZE}:{size!r}",
                    store_name=self.name,
                )
        if not isinstance(max_concurrency, int) or not 1 <= max_concurrency <= MAX_CONCURRENCY:
            raise ConfigurationError(
                f"max_concurrency_must_be_1_to_{MAX_CONCURRENCY}:{max_concurrency!r}", store_name=self.name
            )
        self.part_size = part_size
        self.max_concurrency = max_concurrency
        self._upload_pool = LazyThreadPool(max_concurrency, f"persisty-data-s3-{self.name}")
        self.copy_part_size = copy_part_size
        self.send_checksums = send_checksums
        self.save_computed_etags = save_computed_etags
        self.publish_by_copy = publish_by_copy
        self._meta = create_data_store_meta(self.name, self, max_item_size, permitted_content_types, batch_size)
        # Presigned URLs and forms come from a client that signs with SigV4: a given
        # client's default config presigns with SigV2 (see presigning_client).
        self._presigning_client: Optional[Any] = None
        self._presigning_lock = threading.Lock()
        if client is not None:
            if session is not None or endpoint_url is not None or region_name is not None:
                raise ConfigurationError("pass_a_client_or_client_settings_not_both", store_name=self.name)
            self._client = client
        else:
            self._client = _build_client(
                self.name,
                session,
                endpoint_url,
                region_name,
                send_checksums,
                max_attempts,
                connect_timeout,
                read_timeout,
                addressing_style,
            )
            self._presigning_client = self._client  # built with SigV4 already
        self._conditional_deletes = True
        self._bucket_checked = False
        self._sha256_cache: OrderedDict[Tuple[str, str], str] = OrderedDict()
        self._sha256_lock = threading.Lock()

    def get_meta(self) -> DataStoreMeta:
        return self._meta

    @property
    def client(self) -> Any:
        """The boto3 S3 client (for maintenance and tests)."""
        return self._client

    @property
    def presigning_client(self) -> Any:
        """
        A client like ``client`` that presigns URLs and POST forms with SigV4. A boto3
        client whose config names no signature version presigns S3 requests with SigV2,
        for backwards compatibility: SigV2 signs fewer parameters (no response headers
        overrides) and some regions and S3-compatible servers refuse it. So a given client
        gets a twin with the same credentials object (refreshed credentials stay shared),
        region, endpoint and config, plus signature_version="s3v4"; built once, on first use.
        """
        with self._presigning_lock:
            if self._presigning_client is None:
                with self._errors():
                    self._presigning_client = _sigv4_twin(self._client)
            return self._presigning_client

    # region: keys
    def _s3_key(self, key: str) -> str:
        s3_key = self.prefix + key
        if len(s3_key.encode("utf-8")) > S3_MAX_KEY_BYTES:
            raise InvalidKeyError(f"longer_than_{S3_MAX_KEY_BYTES}_bytes_with_prefix", key=key, store_name=self.name)
        return s3_key

    def _key_from_s3(self, s3_key: str) -> Optional[str]:
        if not s3_key.startswith(self.prefix):
            return None
        key = s3_key[len(self.prefix) :]
        return key if is_valid_key(key) else None

    def _errors(self, key: Optional[str] = None) -> Any:
        return map_s3_errors(key, self.name, self.bucket)

    # endregion

    # region: items from HEAD and listings
    def _head(
        self,
        s3_key: str,
        if_match: Optional[str] = None,
        bucket: Optional[str] = None,
        version_id: Optional[str] = None,
        checksum: bool = False,
    ) -> Optional[Dict[str, Any]]:
        """
        HeadObject, or None if there is no object. A failed If-Match raises
        ContentChangedError. checksum: ask for the object's stored checksums too.
        """
        params: Dict[str, Any] = dict(Bucket=bucket or self.bucket, Key=s3_key)
        if if_match is not None:
            params["IfMatch"] = if_match
        if checksum:
            params["ChecksumMode"] = "ENABLED"
        if version_id is not None:
            params["VersionId"] = version_id
        key = s3_key[len(self.prefix) :]
        with map_s3_errors(key, self.name, params["Bucket"]):
            try:
                head: Dict[str, Any] = self._client.head_object(**params)
            except ClientError as exc:
                if error_code(exc) not in NOT_FOUND_CODES:
                    raise
            else:
                if if_match is not None:
                    self._check_etag(head, if_match, key)
                return head
        if not self._bucket_checked and params["Bucket"] == self.bucket:
            self._check_bucket()
        return None

    def _check_etag(self, response: Dict[str, Any], expected: str, key: str) -> None:
        """
        Raise ContentChangedError unless the response is of the object version with S3
        ETag expected. If-Match alone is not enough: an endpoint or proxy that ignores it
        answers with the current version, whatever it is.
        """
        etag = response.get("ETag")
        if not etag:
            raise StorageError("response_without_etag", key=key, store_name=self.name)
        if _bare_etag(etag) != _bare_etag(expected):
            raise ContentChangedError("item_replaced", key=key, store_name=self.name)

    def _check_bucket(self) -> None:
        """
        A HEAD has no body, so S3 answers 404 alike for a missing key and a missing bucket
        (moto adds a NoSuchBucket body; S3 does not). The first time a key is missing, make
        sure the bucket is there, so a misconfigured store fails instead of looking empty.
        """
        with self._errors():
            try:
                self._client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                code = error_code(exc)
                if code in NOT_FOUND_CODES | MISSING_BUCKET_CODES:
                    raise ConfigurationError(f"bucket_not_found:{self.bucket}", store_name=self.name) from exc
                if code not in FORBIDDEN_CODES:
                    raise
                # s3:ListBucket not granted: the bucket cannot be checked this way.
        self._bucket_checked = True

    def _item_from_head(self, key: str, head: Dict[str, Any]) -> S3DataItem:
        item = S3DataItem(
            self,
            key,
            int(head["ContentLength"]),
            _utc_seconds(head["LastModified"]),
            head["ETag"],
            _version_id(head),
        )
        self._fill_from_head(item, head)
        return item

    def _fill_from_head(self, item: S3DataItem, head: Dict[str, Any]) -> None:
        if item._content_type is None:
            item._content_type = _content_type(item.key, head.get("ContentType"))
        if item._etag is None:
            item._etag = _metadata_sha256(head) or self._cached_sha256(item)

    def _item_from_listing(self, obj: Dict[str, Any]) -> Optional[S3DataItem]:
        key = self._key_from_s3(obj["Key"])
        if key is None:
            return None
        item = S3DataItem(self, key, int(obj["Size"]), _utc_seconds(obj["LastModified"]), obj["ETag"])
        cached = self._cached_sha256(item)
        if cached is not None:
            item._etag = cached
        return item

    def _read(self, key: str) -> Optional[S3DataItem]:
        s3_key = self._s3_key(key)
        item = None
        for _ in range(READ_ATTEMPTS):
            head = self._head(s3_key)
            if head is None:
                return None
            item = self._item_from_head(key, head)
            if item._etag is not None or not head.get("TagCount"):
                return item
            # A multipart upload: its hash is in its tags. Read them now, so the item
            # describes one version completely (reading them later could find it replaced).
            sha256 = self._sha256_from_tags(item, head)
            if sha256 is not None:
                self._cache_sha256(item, sha256)
                item._etag = sha256
                return item
            try:
                if self._head(s3_key, if_match=item.s3_etag) is not None:
                    return item  # not ours, or never tagged: hashed when first used
            except ContentChangedError:
                pass  # replaced between the HEAD and the tags: read the new version
        return item

    def _load_content_meta(self, item: S3DataItem) -> None:
        """
        Load content_type and etag of a listed item: one HEAD; for a multipart upload, its
        tags; a hash of the content only for objects other tools wrote.
        """
        head = self._head(self._s3_key(item.key), if_match=item.s3_etag)
        if head is None:
            raise ContentChangedError("item_deleted", key=item.key, store_name=self.name)
        self._fill_from_head(item, head)
        if item._etag is None:
            sha256 = self._sha256_from_tags(item, head)
            if sha256 is not None:
                self._cache_sha256(item, sha256)
                item._etag = sha256
            else:
                item._etag = self._compute_sha256(item, head)

    # endregion

    # region: etags of objects without sha256 metadata
    def _cached_sha256(self, item: S3DataItem) -> Optional[str]:
        with self._sha256_lock:
            return self._sha256_cache.get((item.key, item.s3_etag))

    def _cache_sha256(self, item: S3DataItem, sha256: str) -> None:
        with self._sha256_lock:
            self._sha256_cache[(item.key, item.s3_etag)] = sha256
            while len(self._sha256_cache) > SHA256_CACHE_SIZE:
                self._sha256_cache.popitem(last=False)

    def _pending_tagging(self) -> str:
        """The Tagging of a multipart upload until close() knows its hash."""
        return f"{TAG_SHA256}={TAG_PENDING}"

    def _tag_sha256(self, key: str, s3_etag: str, version_id: Optional[str], sha256: str) -> None:
        """
        Tag a just-completed multipart upload with its SHA-256 and the S3 ETag it belongs
        to (a concurrent writer may have replaced the object already: readers only trust
        tags whose ETag matches). A failure is logged, not raised: the content is
        published, and readers compute the hash of an object whose tags lack it.
        """
        params: Dict[str, Any] = dict(
            Bucket=self.bucket,
            Key=self._s3_key(key),
            Tagging={
                "TagSet": [{"Key": TAG_SHA256, "Value": sha256}, {"Key": TAG_S3_ETAG, "Value": s3_etag.strip('"')}]
            },
        )
        if version_id:
            params["VersionId"] = version_id
        try:
            with self._errors(key):
                self._client.put_object_tagging(**params)
        except PersistyDataError as exc:
            logger.warning("could not tag %r with its sha256: %s", key, exc)
        with self._sha256_lock:
            self._sha256_cache[(key, s3_etag)] = sha256

    def _sha256_from_tags(self, item: S3DataItem, head: Dict[str, Any]) -> Optional[str]:
        """The SHA-256 a writer tagged this object version with, if any (see S3DataWriter)."""
        if not head.get("TagCount"):
            return None
        params: Dict[str, Any] = dict(Bucket=self.bucket, Key=self._s3_key(item.key))
        version_id = _version_id(head)
        if version_id:
            params["VersionId"] = version_id
        deadline = time.monotonic() + PENDING_WAIT_SECONDS
        delay = 0.05
        while True:
            try:
                with self._errors(item.key):
                    tag_set = self._client.get_object_tagging(**params).get("TagSet") or ()
            except PersistyDataError as exc:
                logger.info("could not read the tags of %r: %s", item.key, exc)
                return None
            tags = {tag.get("Key"): tag.get("Value") for tag in tag_set}
            value = tags.get(TAG_SHA256)
            if value and _SHA256_HEX.fullmatch(value) and tags.get(TAG_S3_ETAG) == head["ETag"].strip('"'):
                return value
            if value != TAG_PENDING:
                return None
            # Completed a moment ago: its writer tags it right after. One that stays
            # pending (its writer died in between) is hashed like a foreign object.
            age = datetime.now(timezone.utc) - _utc_seconds(head["LastModified"])
            if age > PENDING_FRESH or time.monotonic() + delay > deadline:
                return None
            time.sleep(delay)
            delay *= 2

    def _compute_sha256(self, item: S3DataItem, head: Dict[str, Any]) -> str:
        """Hash an object written without x-amz-meta-sha256 (once), and save the hash."""
        if item.size == 0:
            sha256 = EMPTY_SHA256
            self._resolve_etag(item, sha256)
        else:
            # A full read of an item without a known hash hashes it (see _open_reader).
            with self._open_reader(item, 0, item.size) as reader:
                view = memoryview(bytearray(HASH_BUFFER_SIZE))
                while reader.readinto(view):
                    pass
            sha256 = item._etag
            if sha256 is None:
                raise StorageError("content_ended_early", key=item.key, store_name=self.name)
        if self.save_computed_etags and _version_id(head) is None:
            self._save_sha256(item, head, sha256)
        return sha256

    def _save_sha256(self, item: S3DataItem, head: Dict[str, Any], sha256: str) -> None:
        s3_key = self._s3_key(item.key)
        content_type = head.get("ContentType") or item.content_type
        metadata = dict(head.get("Metadata") or {})
        extra = {name: head[name] for name in _PRESERVED_ON_COPY if head.get(name)}
        try:
            s3_etag, _, copied, _ = self._server_copy(
                self.bucket, s3_key, item.s3_etag, item.size, s3_key, content_type, sha256, metadata, extra
            )
            if copied is not None and copied != sha256:
                self._relabel(s3_key, content_type, copied, metadata)
                return
        except PersistyDataError as exc:
            # The hash is still right for this item; only the saving failed.
            logger.info("could not save the sha256 of %r: %s", item.key, exc)
            return
        # Same bytes, new S3 ETag: keep the item readable.
        item._s3_etag = s3_etag
        self._cache_sha256(item, sha256)

    # endregion

    # region: reading content
    def _open_reader(self, item: S3DataItem, start: int, end: int) -> io.RawIOBase:
        s3_key = self._s3_key(item.key)
        if end <= start:
            # Nothing to read, but the item must still be the current content.
            if self._head(s3_key, if_match=item.s3_etag) is None:
                raise ContentChangedError("item_deleted", key=item.key, store_name=self.name)
            return IterReader(iter(()))
        params: Dict[str, Any] = dict(Bucket=self.bucket, Key=s3_key, IfMatch=item.s3_etag)
        ranged = start > 0 or end < item.size
        if ranged:
            params["Range"] = f"bytes={start}-{end - 1}"
        with self._errors(item.key):
            response = self._client.get_object(**params)
        body = response["Body"]
        try:
            self._check_etag(response, item.s3_etag, item.key)
        except PersistyDataError:
            body.close()
            raise
        # Some endpoints ignore Range and send everything: never pass that off as the range.
        content_range = response.get("ContentRange") or ""
        if response.get("ContentLength") != end - start or (
            ranged and not content_range.startswith(f"bytes {start}-{end - 1}/")
        ):
            body.close()
            raise StorageError(
                f"unexpected_response_range:{content_range or response.get('ContentLength')}",
                key=item.key,
                store_name=self.name,
            )
        # The response describes the very version the item names: whatever it tells is
        # the item's for good, so a later replacement cannot make the item unreadable.
        self._fill_from_head(item, response)
        digest = hashlib.sha256() if item._etag is None and not ranged else None
        return IterReader(self._iter_body(body, item, end - start, digest), on_close=body.close)

    def _iter_body(self, body: Any, item: S3DataItem, length: int, digest: Optional[Any]) -> Iterator[bytes]:
        """
        The body in pieces. With a digest (a full read of an item whose hash is not known
        yet), the item's etag is set from the bytes once all of them have arrived.
        """
        received = 0
        with self._errors(item.key):
            while True:
                data = body.read(READ_CHUNK_SIZE)
                if not data:
                    return
                received += len(data)
                if digest is not None:
                    digest.update(data)
                    if received == length:
                        self._resolve_etag(item, digest.hexdigest())
                yield data

    def _resolve_etag(self, item: S3DataItem, sha256: str) -> None:
        self._cache_sha256(item, sha256)
        if item._etag is None:
            item._etag = sha256

    # endregion

    # region: search
    def search(
        self,
        search_filter: SearchFilterABC = INCLUDE_ALL,
        search_order: Optional[SearchOrder] = None,
        page_key: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> ResultSet[DataItemABC]:
        meta = self._meta
        limit = search.check_limit(limit, meta.batch_size)
        prepared = search.prepare_filter(search_filter, meta.attrs)
        orders = search.check_order(search_order, meta.attrs)
        after, offset = search.get_page_position(page_key)
        if orders:
            preload = any(order.attr in _LAZY_ATTRS for order in orders)
            items = search.sort_items(list(self._query(prepared, None, preload)), orders)
            return search.page_by_offset(items, offset, limit)
        if _is_key_prefix_only(prepared):
            return self._list_page(search.get_key_prefix(prepared), after, limit)
        return search.page_by_key(self._query(prepared, after, False), limit)

    def search_all(
        self,
        search_filter: SearchFilterABC = INCLUDE_ALL,
        search_order: Optional[SearchOrder] = None,
    ) -> Iterator[DataItemABC]:
        meta = self._meta
        prepared = search.prepare_filter(search_filter, meta.attrs)
        orders = search.check_order(search_order, meta.attrs)
        if not orders:
            return self._query(prepared, None, False)
        preload = any(order.attr in _LAZY_ATTRS for order in orders)
        return iter(search.sort_items(list(self._query(prepared, None, preload)), orders))

    def count(self, search_filter: SearchFilterABC = INCLUDE_ALL) -> int:
        prepared = search.prepare_filter(search_filter, self._meta.attrs)
        return sum(1 for _ in self._query(prepared, None, False))

    def _query(self, search_filter: SearchFilterABC, after: Optional[str], preload: bool) -> Iterator[S3DataItem]:
        """Items matching search_filter in key order, after `after`."""
        attrs = self._meta.attrs
        if search_filter is EXCLUDE_ALL:
            return
        exact_key = search.get_exact_key(search_filter)
        if exact_key is not None:
            item = self._read(exact_key) if self._is_addressable(exact_key) else None
            if item and (after is None or item.key > after) and search.match(search_filter, item, attrs):
                yield item
            return
        items = self._iter_listing(search.get_key_prefix(search_filter), after)
        needs_head = preload or _uses_lazy_attrs(search_filter)
        prefix_only = _is_key_prefix_only(search_filter)
        # Conjuncts the listing can decide (key, size, updated_at) go first: only the
        # objects that pass them cost a HEAD.
        cheap = [f for f in search.conjuncts(search_filter) if not _uses_lazy_attrs(f)] if needs_head else []
        for item in items:
            if cheap and not all(f.match(item, attrs) for f in cheap):
                continue
            if needs_head:
                fresh = self._refresh(item)
                if fresh is None:
                    continue  # deleted since it was listed
                item = fresh
            if prefix_only or search_filter.match(item, attrs):
                yield item

    def _refresh(self, item: S3DataItem) -> Optional[S3DataItem]:
        """The listed item with content_type (and etag where known) from one HEAD."""
        head = self._head(self._s3_key(item.key))
        if head is None:
            return None
        if head["ETag"] != item.s3_etag:
            return self._item_from_head(item.key, head)  # replaced since it was listed
        self._fill_from_head(item, head)
        return item

    def _is_addressable(self, key: str) -> bool:
        return is_valid_key(key) and len((self.prefix + key).encode("utf-8")) <= S3_MAX_KEY_BYTES

    def _list_objects(self, prefix: str, after: Optional[str], max_keys: int, token: Optional[str]) -> Dict[str, Any]:
        params: Dict[str, Any] = dict(Bucket=self.bucket, Prefix=self.prefix + prefix, MaxKeys=max_keys)
        if token:
            params["ContinuationToken"] = token
        elif after is not None:
            params["StartAfter"] = self.prefix + after
        with self._errors():
            return self._client.list_objects_v2(**params)

    def _iter_listing(self, prefix: str, after: Optional[str]) -> Iterator[S3DataItem]:
        token = None
        while True:
            response = self._list_objects(prefix, after, LIST_PAGE_SIZE, token)
            for obj in response.get("Contents") or ():
                after = obj["Key"][len(self.prefix) :]
                item = self._item_from_listing(obj)
                if item is not None:
                    yield item
            token = response.get("NextContinuationToken")
            if not response.get("IsTruncated"):
                return

    def _list_page(self, prefix: str, after: Optional[str], limit: int) -> ResultSet[DataItemABC]:
        """One page of a prefix listing: ListObjectsV2 with MaxKeys = limit."""
        results: List[DataItemABC] = []
        token = None
        last_listed = None
        truncated = False
        while len(results) < limit:
            response = self._list_objects(prefix, after, limit - len(results), token)
            for obj in response.get("Contents") or ():
                last_listed = obj["Key"][len(self.prefix) :]
                item = self._item_from_listing(obj)
                if item is not None:
                    results.append(item)
            truncated = bool(response.get("IsTruncated"))
            token = response.get("NextContinuationToken")
            if not truncated or not token:
                break  # (objects that are not items were skipped: top the page up)
        next_page_key = None
        if truncated and last_listed is not None:
            next_page_key = search.encode_page_key({"after": last_listed})
        return ResultSet(results, next_page_key)

    # endregion

    # region: writing and copying
    def _create_writer(self, key: str, content_type: str) -> S3DataWriter:
        return S3DataWriter(self, key, content_type)

    def _new_temp_key(self) -> str:
        return f"{self.prefix}{TEMP_FOLDER}{uuid.uuid4().hex}"

    def _published_item(
        self,
        key: str,
        size: int,
        content_type: str,
        etag: str,
        s3_etag: str,
        version_id: Optional[str],
        last_modified: Optional[datetime] = None,
    ) -> S3DataItem:
        """
        The item for content just published. updated_at is S3's LastModified: from the
        response when it has one (CopyObject's), else loaded with a HEAD when first used.
        """
        updated_at = None if last_modified is None else _utc_seconds(last_modified)
        return S3DataItem(self, key, size, updated_at, s3_etag, version_id, content_type, etag)

    def _load_updated_at(self, item: S3DataItem) -> None:
        head: Optional[Dict[str, Any]]
        try:
            # In a versioned bucket, that version's date even if it was replaced since.
            head = self._head(self._s3_key(item.key), if_match=item.s3_etag, version_id=item.version_id)
        except ContentChangedError:
            head = None
        if head is None:
            # Replaced or deleted by someone else already: S3 no longer has its date.
            item._updated_at = datetime.now(timezone.utc).replace(microsecond=0)
        else:
            item._updated_at = _utc_seconds(head["LastModified"])

    def _written_item(self, key: str, size: int, content_type: str, etag: str, response: Dict[str, Any]) -> S3DataItem:
        return self._published_item(key, size, content_type, etag, response["ETag"], _version_id(response))

    def _publish_copy(
        self, temp_key: str, temp_s3_etag: str, size: int, s3_key: str, content_type: str, sha256: str
    ) -> "_Copied":
        """Publish a completed temporary upload under s3_key, with its type and hash."""
        copied = self._server_copy(self.bucket, temp_key, temp_s3_etag, size, s3_key, content_type, sha256)
        if copied.sha256 is not None and copied.sha256 != sha256:
            # Nobody else writes a temporary key: S3 stored other bytes than we sent.
            raise StorageError("checksum_mismatch_after_copy", key=s3_key[len(self.prefix) :], store_name=self.name)
        return copied

    def _server_copy(
        self,
        source_bucket: str,
        source_s3_key: str,
        source_s3_etag: str,
        size: int,
        s3_key: str,
        content_type: str,
        sha256: str,
        metadata: Optional[Dict[str, str]] = None,
        extra: Optional[Dict[str, Any]] = None,
    ) -> "_Copied":
        """
        Copy the source version named by its S3 ETag to s3_key in this bucket with a new
        content type and x-amz-meta-sha256. Returns the new S3 ETag, version id, SHA-256
        hex of the bytes S3 copied and LastModified, the last two when S3 reports them
        (one CopyObject does; with ChecksumAlgorithm for the checksum).
        :raises ContentChangedError: if the source changed or vanished.
        """
        copy_source = {"Bucket": source_bucket, "Key": source_s3_key}
        params: Dict[str, Any] = dict(
            Bucket=self.bucket,
            Key=s3_key,
            ContentType=content_type,
            Metadata={**(metadata or {}), self.SHA256_METADATA: sha256},
            **(extra or {}),
        )
        key = s3_key[len(self.prefix) :]
        if size <= min(self.copy_part_size, MAX_COPY_OBJECT_SIZE):
            if self.send_checksums:
                params["ChecksumAlgorithm"] = "SHA256"
            with self._errors(key):
                response = self._client.copy_object(
                    CopySource=copy_source, CopySourceIfMatch=source_s3_etag, MetadataDirective="REPLACE", **params
                )
            result = response.get("CopyObjectResult") or {}
            checksum = result.get("ChecksumSHA256")
            copied = base64.b64decode(checksum).hex() if checksum and "-" not in checksum else None
            return _Copied(result["ETag"], _version_id(response), copied, result.get("LastModified"))
        with self._errors(key):
            upload_id = self._client.create_multipart_upload(**params)["UploadId"]
        try:
            part_size = max(self.copy_part_size, math.ceil(size / MAX_PARTS))
            parts = []
            with self._errors(key):
                for number, start in enumerate(range(0, size, part_size), 1):
                    end = min(size, start + part_size) - 1
                    response = self._client.upload_part_copy(
                        Bucket=self.bucket,
                        Key=s3_key,
                        UploadId=upload_id,
                        PartNumber=number,
                        CopySource=copy_source,
                        CopySourceRange=f"bytes={start}-{end}",
                        CopySourceIfMatch=source_s3_etag,
                    )
                    parts.append({"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]})
            # moto ignores CopySourceIfMatch (S3 honours it): make sure every part came from
            # the version we named before anything is published.
            if self._head(source_s3_key, if_match=source_s3_etag, bucket=source_bucket) is None:
                raise ContentChangedError("item_deleted", key=key, store_name=self.name)
            with self._errors(key):
                response = self._client.complete_multipart_upload(
                    Bucket=self.bucket, Key=s3_key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
        except BaseException:
            self._abort_upload_quietly(s3_key, upload_id)
            raise
        return _Copied(response["ETag"], _version_id(response), None, None)

    def _relabel(self, s3_key: str, content_type: str, sha256: str, metadata: Optional[Dict[str, str]] = None) -> None:
        """
        Fix x-amz-meta-sha256 after a CopyObject copied other bytes than the version it
        named: an endpoint that ignores x-amz-copy-source-if-match (moto does; S3 does
        not) lets a concurrent write slip in. S3's own checksum of the copy is the truth.
        """
        for _ in range(RELABEL_ATTEMPTS):
            head = self._head(s3_key)
            if head is None:
                return
            copied = self._server_copy(
                self.bucket, s3_key, head["ETag"], int(head["ContentLength"]), s3_key, content_type, sha256, metadata
            ).sha256
            if copied is None or copied == sha256:
                return
            sha256 = copied
        logger.warning("could not settle the sha256 metadata of %r", s3_key)

    def _abort_upload_quietly(self, s3_key: str, upload_id: str) -> None:
        try:
            with self._errors(s3_key):
                try:
                    self._client.abort_multipart_upload(Bucket=self.bucket, Key=s3_key, UploadId=upload_id)
                except ClientError as exc:
                    if error_code(exc) not in NO_SUCH_UPLOAD_CODES | NOT_FOUND_CODES:
                        raise
        except PersistyDataError as exc:
            logger.warning("could not abort multipart upload %s of %r: %s", upload_id, s3_key, exc)

    def _delete_quietly(self, s3_key: str, version_id: Optional[str] = None) -> None:
        """Delete an internal object (a version of it, so a versioned bucket keeps nothing)."""
        params: Dict[str, Any] = dict(Bucket=self.bucket, Key=s3_key)
        if version_id:
            params["VersionId"] = version_id
        try:
            with self._errors(s3_key):
                self._client.delete_object(**params)
        except PersistyDataError as exc:
            logger.warning("could not delete %r: %s (remove_stale_uploads() will)", s3_key, exc)

    def _copy_native(
        self,
        source_store: DataStoreABC,
        source_item: DataItemABC,
        key: str,
        content_type: str,
    ) -> Optional[DataItemABC]:
        if not isinstance(source_store, S3DataStore) or not isinstance(source_item, S3DataItem):
            return None
        if not self._shares_endpoint(source_store):
            return None
        max_size = self._meta.max_item_size
        if max_size is not None and source_item.size > max_size:
            raise ItemTooLargeError(f"more_than_{max_size}_bytes", key=key, store_name=self.name)
        if not source_store._vouches_for(source_item):
            return None  # streamed instead, and checked as it streams
        sha256 = source_item.etag  # from metadata, or hashed once by the source store
        s3_key = self._s3_key(key)
        try:
            result = self._server_copy(
                source_store.bucket,
                source_store._s3_key(source_item.key),
                source_item.s3_etag,
                source_item.size,
                s3_key,
                content_type,
                sha256,
            )
        except ForbiddenError:
            if source_store._client is self._client:
                raise
            return None  # these credentials cannot read the source: stream with each store's own
        if result.sha256 is not None and result.sha256 != sha256:
            self._relabel(s3_key, content_type, result.sha256)
            raise ContentChangedError("item_replaced", key=source_item.key, store_name=source_store.name)
        return self._published_item(
            key, source_item.size, content_type, sha256, result.s3_etag, result.version_id, result.last_modified
        )

    def _vouches_for(self, item: S3DataItem) -> bool:
        """
        True if S3 ties the item's etag to the bytes a server-side copy would copy, so the
        copy needs no check. x-amz-meta-sha256 alone does not: a tool that rewrites an
        object keeping its metadata keeps it too. S3's own SHA-256 checksum of the object
        (stored by our PutObject and CopyObject) does. An etag from tags or from hashing is
        bound to the S3 ETag already.

        :raises ContentCorruptedError: if S3's checksum of the object is not its etag.
        """
        head = self._head(self._s3_key(item.key), if_match=item.s3_etag, checksum=True)
        if head is None:
            raise ContentChangedError("item_deleted", key=item.key, store_name=self.name)
        if _metadata_sha256(head) != item.etag:
            return True
        checksum = _full_object_sha256(head)
        if checksum is None:
            return False
        if checksum != item.etag:
            raise ContentCorruptedError(f"s3_sha256_{checksum}_is_not_the_etag", key=item.key, store_name=self.name)
        return True

    def _shares_endpoint(self, other: "S3DataStore") -> bool:
        mine, theirs = self._client.meta, other._client.meta
        return bool(mine.endpoint_url == theirs.endpoint_url and mine.region_name == theirs.region_name)

    def remove_stale_uploads(self, older_than: timedelta = timedelta(days=1)) -> int:
        """
        Abort multipart uploads and delete temporary upload objects under the store's
        prefix older than older_than: what writers in a process that died left behind.
        (A bucket lifecycle rule can do the same: AbortIncompleteMultipartUpload, and
        Expiration on the .persisty_data/uploads/ prefix.) Returns how many it removed;
        gc() does the same and reports what it removed.
        """
        return self.gc(older_than).count

    def _gc(self, older_than: timedelta, report: GcReport) -> None:
        cutoff = datetime.now(timezone.utc) - older_than
        with self._errors():
            paginator = self._client.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for upload in page.get("Uploads") or ():
                    if upload["Initiated"] < cutoff:
                        if not report.dry_run:
                            self._abort_upload_quietly(upload["Key"], upload["UploadId"])
                        report.add("multipart_upload", f"{upload['Key']}?uploadId={upload['UploadId']}")
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + TEMP_FOLDER):
                for obj in page.get("Contents") or ():
                    if obj["LastModified"] < cutoff:
                        if not report.dry_run:
                            self._delete_quietly(obj["Key"])
                        report.add("temp_key", obj["Key"], obj.get("Size"))

    # endregion

    # region: deleting
    def _delete(self, key: str, item: Optional[DataItemABC]) -> bool:
        s3_key = self._s3_key(key)
        with self._errors(key):
            for _ in range(DELETE_ATTEMPTS):
                head = self._head(s3_key)
                if head is None:
                    return False
                params: Dict[str, Any] = dict(Bucket=self.bucket, Key=s3_key)
                if self._conditional_deletes:
                    params["IfMatch"] = head["ETag"]
                try:
                    self._client.delete_object(**params)
                    return True
                except ClientError as exc:
                    code = error_code(exc)
                    if code in NOT_FOUND_CODES:
                        return False  # deleted by someone else since the HEAD
                    if code in PRECONDITION_CODES:
                        continue  # replaced since the HEAD: delete the new version
                    if code in NOT_IMPLEMENTED_CODES and self._conditional_deletes:
                        self._conditional_deletes = False
                        continue
                    raise
        raise StorageError("item_kept_changing_during_delete", key=key, store_name=self.name)

    # endregion


def _build_client(
    store_name: str,
    session: Any,
    endpoint_url: Optional[str],
    region_name: Optional[str],
    send_checksums: bool,
    max_attempts: int,
    connect_timeout: float,
    read_timeout: float,
    addressing_style: Optional[str],
) -> Any:
    import boto3
    from botocore.config import Config

    options: Dict[str, Any] = dict(
        signature_version="s3v4",
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        # A custom endpoint (MinIO, moto, an IP address) rarely has per-bucket DNS names.
        s3={"addressing_style": addressing_style or ("path" if endpoint_url else "auto")},
    )
    if not send_checksums:
        # Also stops botocore adding its default CRC32 trailers, which some endpoints refuse.
        options["request_checksum_calculation"] = "when_required"
        options["response_checksum_validation"] = "when_required"
    with map_s3_errors(store_name=store_name):
        try:
            session = session or boto3.session.Session()
            return session.client("s3", endpoint_url=endpoint_url, region_name=region_name, config=Config(**options))
        except ValueError as exc:  # e.g. a malformed endpoint URL
            raise ConfigurationError(f"invalid_s3_client_settings:{exc}", store_name=store_name) from exc


def _sigv4_twin(client: Any) -> Any:
    """A client like the given one (credentials, region, endpoint, config) that signs with SigV4."""
    import boto3
    from botocore.config import Config

    meta = client.meta
    # Placeholder keys, replaced below: they spare a walk of the credential chain.
    options: Dict[str, Any] = dict(
        region_name=meta.region_name,
        config=meta.config.merge(Config(signature_version="s3v4")),
        aws_access_key_id="replaced",
        aws_secret_access_key="replaced",
    )
    session = boto3.session.Session()
    twin = session.client("s3", **options)
    if twin.meta.endpoint_url != meta.endpoint_url:
        # The given client was pointed at its own endpoint (MinIO, moto, a proxy...).
        twin = session.client("s3", endpoint_url=meta.endpoint_url, **options)
    # botocore has no public accessor for a client's credentials. Sharing the object
    # (rather than copying keys) keeps refreshable credentials (roles, SSO) refreshing.
    twin._request_signer._credentials = client._request_signer._credentials
    return twin


def _check_prefix(prefix: str, store_name: str) -> str:
    """'' or a folder path ending in '/' (one is added if missing)."""
    if not prefix:
        return ""
    if not isinstance(prefix, str):
        raise ConfigurationError(f"prefix_must_be_str:{prefix!r}", store_name=store_name)
    folder = prefix[:-1] if prefix.endswith("/") else prefix
    try:
        validate_key(folder)
    except InvalidKeyError as exc:
        raise ConfigurationError(f"invalid_prefix:{prefix!r}", store_name=store_name) from exc
    if len(folder.encode("utf-8")) >= MAX_KEY_BYTES:
        raise ConfigurationError(f"prefix_too_long:{prefix!r}", store_name=store_name)
    return folder + "/"


class _Copied(NamedTuple):
    """What a server-side copy reports (sha256 and last_modified when S3 says)."""

    s3_etag: str
    version_id: Optional[str]
    sha256: Optional[str]
    last_modified: Optional[datetime]


def _bare_etag(etag: str) -> str:
    # S3 quotes ETags; some S3-compatible servers and proxies drop the quotes.
    return etag.strip('"')


def _utc_seconds(value: datetime) -> datetime:
    # S3 keeps whole seconds (HEAD's Last-Modified has no more): listings and HEADs agree.
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).replace(microsecond=0)


def _content_type(key: str, value: Optional[str]) -> str:
    if value:
        try:
            return normalize_content_type(value)
        except PersistyDataError:
            pass
    return guess_content_type(key)


def _metadata_sha256(head: Dict[str, Any]) -> Optional[str]:
    value = (head.get("Metadata") or {}).get(S3DataStore.SHA256_METADATA)
    return value if isinstance(value, str) and _SHA256_HEX.fullmatch(value) else None


def _full_object_sha256(head: Dict[str, Any]) -> Optional[str]:
    """S3's SHA-256 of the whole object (hex), if it keeps one (a multipart upload's is composite)."""
    value = head.get("ChecksumSHA256")
    if not value or "-" in value or head.get("ChecksumType") == "COMPOSITE":
        return None
    try:
        return base64.b64decode(value, validate=True).hex()
    except ValueError:
        return None


def _is_key_prefix_only(search_filter: SearchFilterABC) -> bool:
    """True if the filter only restricts the key prefix (S3's Prefix does all of it)."""
    return all(isinstance(f, KeyPrefixFilter) for f in search.conjuncts(search_filter))


def _uses_lazy_attrs(search_filter: SearchFilterABC) -> bool:
    """True if matching may read content_type or etag (so each listed object needs a HEAD)."""
    if search_filter is INCLUDE_ALL or search_filter is EXCLUDE_ALL:
        return False
    if isinstance(search_filter, KeyPrefixFilter):
        return False
    if isinstance(search_filter, AttrFilter):
        return search_filter.name in _LAZY_ATTRS
    if isinstance(search_filter, (And, Or)):
        return any(_uses_lazy_attrs(f) for f in search_filter.search_filters)
    if isinstance(search_filter, Not):
        return _uses_lazy_attrs(search_filter.search_filter)
    return True  # a QueryFilter (or an unknown filter) may look at every attribute
