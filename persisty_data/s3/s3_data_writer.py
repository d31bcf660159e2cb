"""Streams content to S3: one PutObject when it fits a part, else a multipart upload."""

import base64
import io
import logging
import zlib
from collections import deque
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Deque, Dict, List, Optional

from botocore.exceptions import ClientError

from persisty_data.data_writer_abc import Buffer, DataWriterABC
from persisty_data.errors import StorageError
from persisty_data.s3.s3_data_item import S3DataItem
from persisty_data.s3.s3_data_item import version_id as version_id_of
from persisty_data.s3.s3_errors import (
    NOT_IMPLEMENTED_CODES,
    error_code,
    map_s3_errors,
)

if TYPE_CHECKING:
    from persisty_data.s3.s3_data_store import S3DataStore

logger = logging.getLogger(__name__)

MAX_PARTS = 10_000  # S3's limit per multipart upload
MAX_PART_SIZE = 5 * 1024**3
# The part size doubles every PARTS_PER_SIZE parts, so an upload of unknown length can
# reach S3's 5 TiB object limit without ever running out of part numbers.
PARTS_PER_SIZE = 1000


def crc32_b64(data: Any) -> str:
    """S3's ChecksumCRC32 of data: the CRC-32 as 4 big-endian bytes, base64."""
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode("ascii")


def sha256_b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


class S3DataWriter(DataWriterABC):
    """
    Buffers up to one part in a single bytearray. If the writer closes before the buffer
    overflows, the content goes up in one PutObject carrying the SHA-256 as both
    ``x-amz-meta-sha256`` (our etag) and ``ChecksumSHA256`` (S3 verifies the bytes).

    Otherwise a multipart upload starts at the first byte past one part, at the item's
    key, tagged as pending. Each part goes up as soon as it is full, with its own
    ChecksumCRC32, on the store's upload threads: up to ``max_concurrency`` parts are
    in flight while the next one fills, so a write holds at most max_concurrency + 1
    parts in memory and the caller blocks when that many are buffered. A part that fails
    fails the next write() or close(). close() waits for every part and completes the
    upload - the key changes in that one step, from the old object to the complete new
    one - then tags it with its SHA-256. Any failure before completion aborts the upload
    (after the parts in flight have settled, so none lands after the abort) and leaves
    the old object untouched. With the store's publish_by_copy, the upload goes to a
    temporary key instead and one server-side copy publishes it with the hash as
    metadata. See S3DataStore for why.
    """

    def __init__(self, store: "S3DataStore", key: str, content_type: str):
        # No chunk_size: this class does its own buffering so it holds one part, not two.
        super().__init__(key, content_type, store.get_meta().max_item_size)
        self._store = store
        self._s3_key = store._s3_key(key)
        self._part_size = store.part_size
        self._part = bytearray()
        self._fill = 0
        self._spare: List[bytearray] = []  # buffers of parts already sent, for reuse
        self._upload_id: Optional[str] = None
        self._parts: List[Dict[str, Any]] = []
        self._in_flight: Deque[Future[Dict[str, Any]]] = deque()
        self._upload_key: Optional[str] = None  # where the multipart upload goes
        self._temp_key: Optional[str] = None  # set when that is a temporary key (publish_by_copy)
        self._temp_version_id: Optional[str] = None
        self._temp_exists = False

    def _write_chunk(self, data: Buffer) -> None:
        view = data if isinstance(data, memoryview) else memoryview(data)
        while view:
            if self._fill >= self._part_size:
                self._upload_part()
            end = min(self._part_size, self._fill + len(view))
            count = end - self._fill
            # Grows the first part's buffer as it fills; later parts get a full-size one.
            self._part[self._fill : end] = view[:count]
            self._fill = end
            view = view[count:]

    def _upload_part(self, last: bool = False) -> None:
        """Send the part filled so far (on the store's upload threads) and start the next."""
        store = self._store
        if self._upload_id is None:
            self._upload_id = self._create_upload()
        part_number = len(self._parts) + len(self._in_flight) + 1
        if part_number > MAX_PARTS:
            raise StorageError("more_than_10000_parts", key=self.key, store_name=store.name)
        buffer, length = self._part, self._fill
        while len(self._in_flight) >= store.max_concurrency:
            self._settle_oldest()
        self._in_flight.append(store._upload_pool.get().submit(self._send_part, part_number, buffer, length))
        if last:
            self._part = bytearray()
        else:
            self._part = self._spare.pop() if self._spare else bytearray(self._part_size)
        self._fill = 0
        if part_number % PARTS_PER_SIZE == 0:
            self._part_size = min(MAX_PART_SIZE, self._part_size * 2)
            self._spare.clear()

    def _create_upload(self) -> str:
        store = self._store
        params: Dict[str, Any] = dict(Bucket=store.bucket, ContentType=self.content_type)
        if store.send_checksums:
            params["ChecksumAlgorithm"] = "CRC32"
        with map_s3_errors(self.key, store.name, store.bucket):
            if not store.publish_by_copy:
                # Marked as being written until close() tags it with its hash.
                self._upload_key = self._s3_key
                try:
                    return store._client.create_multipart_upload(
                        Key=self._s3_key, Tagging=store._pending_tagging(), **params
                    )["UploadId"]
                except ClientError as exc:
                    if error_code(exc) not in NOT_IMPLEMENTED_CODES:
                        raise
                logger.warning("%s: endpoint has no object tagging: publishing by copy", store.name)
                store.publish_by_copy = True
            self._upload_key = self._temp_key = store._new_temp_key()
            return store._client.create_multipart_upload(Key=self._temp_key, **params)["UploadId"]

    def _send_part(self, part_number: int, buffer: bytearray, length: int) -> Dict[str, Any]:
        store = self._store
        body = memoryview(buffer)[:length]
        try:
            params: Dict[str, Any] = dict(
                Bucket=store.bucket,
                Key=self._upload_key,
                UploadId=self._upload_id,
                PartNumber=part_number,
                Body=_PartBody(body),
            )
            part: Dict[str, Any] = {"PartNumber": part_number}
            if store.send_checksums:
                params["ChecksumCRC32"] = part["ChecksumCRC32"] = crc32_b64(body)
            with map_s3_errors(self.key, store.name, store.bucket):
                part["ETag"] = store._client.upload_part(**params)["ETag"]
        finally:
            body.release()
        if len(buffer) == self._part_size:
            self._spare.append(buffer)
        return part

    def _settle_oldest(self) -> None:
        """Wait for the oldest part in flight; its failure is raised here."""
        self._parts.append(self._in_flight.popleft().result())

    def _settle_all(self) -> None:
        while self._in_flight:
            self._settle_oldest()

    def _commit(self, size: int, etag: str) -> S3DataItem:
        store = self._store
        if self._upload_id is None:
            del self._part[self._fill :]
            with map_s3_errors(self.key, store.name, store.bucket):
                params: Dict[str, Any] = dict(
                    Bucket=store.bucket,
                    Key=self._s3_key,
                    Body=_PartBody(memoryview(self._part)),
                    ContentType=self.content_type,
                    Metadata={store.SHA256_METADATA: etag},
                )
                if store.send_checksums:
                    # The SHA-256 of the whole object is our etag: S3 checks the bytes against it.
                    params["ChecksumSHA256"] = sha256_b64(bytes.fromhex(etag))
                    # Named too, so that every endpoint keeps it: it ties the etag to these bytes.
                    params["ChecksumAlgorithm"] = "SHA256"
                response = store._client.put_object(**params)
            self._release()
            return store._written_item(self.key, size, self.content_type, etag, response)
        self._upload_part(last=True)
        self._settle_all()
        self._release()
        with map_s3_errors(self.key, store.name, store.bucket):
            response = store._client.complete_multipart_upload(
                Bucket=store.bucket,
                Key=self._upload_key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
            self._upload_id = None
            self._temp_exists = self._temp_key is not None
            s3_etag = response.get("ETag")
            if not s3_etag:
                # botocore raises for an error S3 reports inside a 200 response; a missing
                # ETag means the endpoint broke the protocol.
                raise StorageError("complete_multipart_upload_without_etag", key=self.key, store_name=store.name)
        version_id = version_id_of(response)
        if self._temp_key is None:
            # Published: the key changed in one step. Now label it with its hash.
            store._tag_sha256(self.key, s3_etag, version_id, etag)
            return store._published_item(self.key, size, self.content_type, etag, s3_etag, version_id)
        self._temp_version_id = version_id
        copied = store._publish_copy(self._temp_key, s3_etag, size, self._s3_key, self.content_type, etag)
        self._delete_temp()
        return store._published_item(
            self.key, size, self.content_type, etag, copied.s3_etag, copied.version_id, copied.last_modified
        )

    def _abort(self) -> None:
        # Let the parts in flight finish (or fail) first: a part that lands after the
        # abort would leave storage behind.
        for future in self._in_flight:
            try:
                future.result()
            except BaseException:  # pylint: disable=broad-except
                pass  # the upload is being discarded anyway
        self._in_flight.clear()
        self._release()
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is not None and self._upload_key is not None:
            # Never raises: that would hide the error that caused the abort. A bucket
            # lifecycle rule or S3DataStore.remove_stale_uploads() collects what is left.
            self._store._abort_upload_quietly(self._upload_key, upload_id)
        self._delete_temp()

    def _delete_temp(self) -> None:
        """Delete the completed temporary object (its version, in a versioned bucket)."""
        if not self._temp_exists or self._temp_key is None:
            return
        self._temp_exists = False
        self._store._delete_quietly(self._temp_key, self._temp_version_id)

    def _release(self) -> None:
        self._part = bytearray()
        self._fill = 0
        self._spare.clear()


class _PartBody(io.RawIOBase):
    """
    A seekable, read-only stream over a part already in memory. botocore reads it to sign
    and send (and rewinds it to retry) without the copy that bytes(buffer) would make.
    """

    def __init__(self, view: memoryview):
        super().__init__()
        self._view = view
        self._position = 0

    def __len__(self) -> int:
        return len(self._view)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: len(self._view)}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), len(self._view) - self._position)
        if count <= 0:
            return 0
        buffer[:count] = self._view[self._position : self._position + count]
        self._position += count
        return count

    def read(self, size: Optional[int] = -1) -> bytes:
        total = len(self._view)
        end = total if size is None or size < 0 else min(total, self._position + size)
        data = bytes(self._view[self._position : end])
        self._position = max(self._position, end)
        return data

    def readall(self) -> bytes:
        return self.read()
