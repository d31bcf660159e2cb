"""Streams one multipart/form-data upload into a store, enforcing its signed POST policy."""

import re
from contextlib import contextmanager
from typing import Dict, Iterable, Iterator, List, Optional, Tuple, Union

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from persisty_data.data_item_abc import DataItemABC
from persisty_data.data_writer_abc import DataWriterABC
from persisty_data.errors import ItemTooLargeError, MalformedUploadError, UploadRejectedError
from persisty_data.factory.hosted_data_store_factory import HostedDataStoreFactory
from persisty_data.keys import validate_key
from persisty_data.post_policy import (
    POLICY_FIELD,
    SIGNATURE_FIELD,
    content_length_range,
    decode_policy,
    validate_post_policy,
    verify_signature,
)

MAX_FIELDS = 32
MAX_FIELD_BYTES = 16 * 1024
MAX_HEADER_BYTES = 8 * 1024
MAX_TRAILING_BYTES = 64 * 1024  # bytes after the file part (S3 ignores such fields)
WRITE_BYTES = 1024 * 1024  # file bytes handed to the writer at a time


# The Content-Disposition browsers and HTTP clients send, matched in one step; anything
# else (escaped quotes, other parameters, odd spacing) goes to python-multipart's parser.
_PLAIN_DISPOSITION = re.compile(r'form-data; ?name="([^"\\]*)"(?:; ?filename="[^"\\]*")?', re.IGNORECASE)


def _part_name(disposition: str) -> str:
    match = _PLAIN_DISPOSITION.fullmatch(disposition)
    if match is not None:
        return match.group(1)
    # As bytes: the parser reads them as latin-1, so any character survives the round trip.
    _, params = parse_options_header(disposition.encode("utf-8"))
    name = params.get(b"name")
    if name is None:
        raise MalformedUploadError("part_without_a_name")
    return name.decode("utf-8", "replace")


@contextmanager
def _parser_errors() -> Iterator[None]:
    """Whatever python-multipart refuses (boundary, framing, headers) is a malformed upload."""
    try:
        yield
    except FormParserError as exc:
        raise MalformedUploadError(f"malformed_multipart: {exc}") from None


class HostedUpload:
    """
    Feed it the request body as it arrives. Fields must precede the file part, as on S3:
    when the file part begins, the signature, expiry, key, content type and every other
    field are checked against the policy, before a byte of the file is stored. The file's
    size is counted as it streams and the upload stops at the policy's (or the store's)
    limit. Nothing is published unless finish() succeeds.

    feed(), write_pending() and finish() may block (they store bytes): call them from a
    worker thread in async code.
    """

    def __init__(self, factory: HostedDataStoreFactory, content_type_header: Optional[str]):
        self.factory = factory
        media, params = parse_options_header(content_type_header or "")
        boundary = params.get(b"boundary")
        if media != b"multipart/form-data" or not boundary:
            raise MalformedUploadError("expected_multipart_form_data_with_boundary")
        with _parser_errors():
            self._parser = MultipartParser(
                boundary,
                {
                    "on_part_begin": self._on_part_begin,
                    "on_header_field": self._on_header_field,
                    "on_header_value": self._on_header_value,
                    "on_header_end": self._on_header_end,
                    "on_headers_finished": self._on_headers_finished,
                    "on_part_data": self._on_part_data,
                    "on_part_end": self._on_part_end,
                },
            )
        self.fields: Dict[str, str] = {}
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: Dict[str, str] = {}
        self._header_bytes = 0
        self._part_name: Optional[str] = None
        self._part_value = bytearray()
        self._state = "fields"  # fields -> file -> trailing
        self._writer: Optional[DataWriterABC] = None
        self._pending: List[Union[bytes, memoryview]] = []
        self._pending_bytes = 0
        self._size = 0
        self._size_range: Tuple[int, Optional[int]] = (0, None)
        self._trailing_bytes = 0
        self.key: Optional[str] = None

    # region: driving
    def feed(self, data: bytes) -> None:
        self.feed_all((data,))

    def feed_all(self, chunks: Iterable[bytes]) -> None:
        """Feed the next pieces of the body, in order (one call per hop to a worker thread)."""
        try:
            for data in chunks:
                with _parser_errors():
                    self._parser.write(data)
                if self._pending_bytes >= WRITE_BYTES:
                    self.write_pending()
        except BaseException:
            self.abort()
            raise

    @property
    def pending_bytes(self) -> int:
        return self._pending_bytes

    def write_pending(self) -> None:
        if self._writer is not None and self._pending:
            pending = self._pending
            self._pending = []
            self._pending_bytes = 0
            # One large write: the writer hashes it on another core while it stores it.
            self._writer.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def finish(self, last_chunks: Iterable[bytes] = ()) -> DataItemABC:
        """Publish the file, once the whole body has been fed (the end of it may come here)."""
        self.feed_all(last_chunks)
        try:
            with _parser_errors():
                self._parser.finalize()
            if self._state == "fields" or self._writer is None:
                raise MalformedUploadError("no_file_part")
            if self._state == "file":
                raise MalformedUploadError("body_ends_inside_the_file_part")
            self.write_pending()
            low, _ = self._size_range
            if self._size < low:
                raise UploadRejectedError("content_length_out_of_range", key=self.key)
            self._writer.close()
            return self._writer.get_item()
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        self._pending.clear()
        self._pending_bytes = 0
        if self._writer is not None:
            self._writer.abort()

    # endregion

    # region: multipart callbacks
    def _on_part_begin(self) -> None:
        self._headers = {}
        self._part_name = None
        self._part_value = bytearray()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_bytes += end - start
        self._check_header_size()
        self._header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_bytes += end - start
        self._check_header_size()
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        name = self._header_field.decode("latin-1").strip().lower()
        self._headers[name] = self._header_value.decode("utf-8", "replace").strip()
        self._header_field = bytearray()
        self._header_value = bytearray()

    def _check_header_size(self) -> None:
        if self._header_bytes > MAX_HEADER_BYTES * MAX_FIELDS:
            raise MalformedUploadError("part_headers_too_large")

    def _on_headers_finished(self) -> None:
        self._part_name = _part_name(self._headers.get("content-disposition", ""))
        if self._state == "fields" and self._part_name == "file":
            self._state = "file"
            self._start_file()

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        length = end - start
        if self._state == "file":
            self._size += length
            _, high = self._size_range
            if high is not None and self._size > high:
                raise ItemTooLargeError(f"more_than_{high}_bytes", key=self.key)
            # The parser hands out slices of the bytes we fed it: keep views, not copies.
            piece = memoryview(data)[start:end] if isinstance(data, bytes) else bytes(data[start:end])
            self._pending.append(piece)
            self._pending_bytes += length
        elif self._state == "fields":
            self._part_value += data[start:end]
            if len(self._part_value) > MAX_FIELD_BYTES:
                raise MalformedUploadError(f"field_larger_than_{MAX_FIELD_BYTES}_bytes")
        else:
            self._trailing_bytes += length
            if self._trailing_bytes > MAX_TRAILING_BYTES:
                raise MalformedUploadError("too_much_data_after_the_file")

    def _on_part_end(self) -> None:
        if self._state == "file":
            self._state = "trailing"
            return
        if self._state != "fields":
            return
        name = (self._part_name or "").lower()
        if name in self.fields:
            raise MalformedUploadError(f"duplicate_field:{name}")
        if len(self.fields) >= MAX_FIELDS:
            raise MalformedUploadError(f"more_than_{MAX_FIELDS}_fields")
        try:
            self.fields[name] = self._part_value.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedUploadError(f"field_not_utf8:{name}") from None

    # endregion

    def _start_file(self) -> None:
        """Check everything the policy binds, then open the writer."""
        fields = self.fields
        key = fields.get("key")
        if key is None:
            raise UploadRejectedError("missing_field:key")
        self.key = validate_key(key)
        policy_field = fields.get(POLICY_FIELD)
        signature = fields.get(SIGNATURE_FIELD)
        if not policy_field or not signature:
            raise UploadRejectedError("missing_policy_or_signature", key=key)
        if not verify_signature(self.factory.secret_bytes, policy_field, signature):
            raise UploadRejectedError("signature_does_not_match", key=key)
        policy = decode_policy(policy_field)
        violations = validate_post_policy(policy, fields, implicit_fields={"bucket": self.factory.name})
        if violations:
            raise UploadRejectedError(",".join(str(v) for v in violations), key=key)
        content_type = fields.get("content-type")
        if not content_type:
            raise UploadRejectedError("missing_field:content-type", key=key)
        low, high = content_length_range(policy) or (0, None)
        store = self.factory.get_store()
        max_item_size = store.get_meta().max_item_size
        if max_item_size is not None:
            high = max_item_size if high is None else min(high, max_item_size)
        self._size_range = (low, high)
        self._writer = store.get_data_writer(key, content_type)
