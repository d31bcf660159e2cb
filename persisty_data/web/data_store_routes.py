"""Starlette routes for hosted factories: POST an upload form, GET / HEAD a download."""

import re
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from typing import AsyncIterator, BinaryIO, Dict, Iterable, Iterator, List, Optional
from urllib.parse import quote, urlencode

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from persisty_data.data_item_abc import DataItemABC
from persisty_data.download_headers import download_headers
from persisty_data.errors import PersistyDataError
from persisty_data.factory.hosted_data_store_factory import HostedDataStoreFactory
from persisty_data.keys import validate_key
from persisty_data.web.download_stream import keep_cut_short_downloads_out_of_server_logs, stream_body
from persisty_data.web.error_responses import error_response, response_for
from persisty_data.web.hosted_upload import HostedUpload

FEED_BYTES = 1024 * 1024  # request body gathered before a hop to a worker thread
DOWNLOAD_CHUNK = 1024 * 1024  # a download up to this size is sent in one piece
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def item_metadata(item: DataItemABC) -> dict:
    return {
        "key": item.key,
        "size": item.size,
        "content_type": item.content_type,
        "etag": item.etag,
        "updated_at": item.updated_at.isoformat(),
    }


class DataStoreRoutes:
    """
    Routes for a set of hosted factories, all under one path prefix:

    - ``POST {prefix}/{store}``: an upload form (see HostedUpload). Answers 201 with the
      item's metadata as JSON, or as S3 does when the form carries success_action_status
      (200 / 204, empty body) or success_action_redirect (303 to it, with bucket, key and
      etag in the query).
    - ``GET / HEAD {prefix}/{store}/{key}``: a download, by signed URL (expires and
      signature in the query) or by the caller's own Bearer token. Single byte ranges,
      ETag / If-None-Match, Last-Modified / If-Modified-Since; Content-Type and
      Content-Disposition from download_headers (inline only for passive content);
      nosniff and a sandboxing CSP on every response.

    Errors are JSON ``{"error_code", "error_msg"}`` with the status of
    persisty_data.web.error_responses. A download whose item is replaced or deleted
    after its status was sent ends early (see persisty_data.web.download_stream).
    """

    def __init__(self, factories: Iterable[HostedDataStoreFactory], authorizer=None):
        self.factories: Dict[str, HostedDataStoreFactory] = {}
        for factory in factories:
            if factory.name in self.factories:
                raise ValueError(f"duplicate_store_name:{factory.name}")
            self.factories[factory.name] = factory
        self._authorizer = authorizer

    @property
    def authorizer(self):
        if self._authorizer is None:
            from servey.security.authorizer.authorizer_factory_abc import get_default_authorizer

            self._authorizer = get_default_authorizer()
        return self._authorizer

    def create_routes(self) -> List[Route]:
        keep_cut_short_downloads_out_of_server_logs()
        routes = []
        for prefix in sorted({f.path_prefix for f in self.factories.values()}):
            routes.append(Route(prefix + "/{store_name}", self.upload, methods=["POST"]))
            routes.append(Route(prefix + "/{store_name}/{key:path}", self.download, methods=["GET", "HEAD"]))
        return routes

    def _factory(self, request: Request) -> Optional[HostedDataStoreFactory]:
        factory = self.factories.get(request.path_params["store_name"])
        if factory is None or not request.url.path.startswith(factory.path_prefix + "/"):
            return None
        return factory

    # region: upload
    async def upload(self, request: Request) -> Response:
        factory = self._factory(request)
        if factory is None:
            return error_response(404, "store_not_found")
        try:
            upload = HostedUpload(factory, request.headers.get("content-type"))
            item = await self._receive(upload, request)
        except PersistyDataError as exc:
            return response_for(exc)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening; the upload was aborted
        return self._upload_response(factory, upload.fields, item)

    @staticmethod
    async def _receive(upload: HostedUpload, request: Request) -> DataItemABC:
        """
        Feed the body to the upload in batches of about FEED_BYTES, in a worker thread.
        A body that fits one batch costs one hop (feed and publish together). A larger
        one is fed batch by batch while the next batch is received (at most one more
        waits in between, so memory stays a few batches).
        """
        chunks = request.stream()
        batch: List[bytes] = []
        size = 0
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                batch.append(chunk)
                size += len(chunk)
                if size >= FEED_BYTES:
                    batch = await _feed_pipelined(upload, chunks, batch)
                    break
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(upload.abort)
            raise _single(exc) from None
        return await anyio.to_thread.run_sync(upload.finish, batch)

    @staticmethod
    def _upload_response(factory: HostedDataStoreFactory, fields: Dict[str, str], item: DataItemABC) -> Response:
        redirect = fields.get("success_action_redirect") or fields.get("redirect")
        if redirect:
            query = urlencode({"bucket": factory.name, "key": item.key, "etag": f'"{item.etag}"'})
            separator = "&" if "?" in redirect else "?"
            return RedirectResponse(
                redirect + separator + query, status_code=303, headers={"X-Content-Type-Options": "nosniff"}
            )
        status = fields.get("success_action_status")
        headers = {"ETag": f'"{item.etag}"', "X-Content-Type-Options": "nosniff"}
        headers["Location"] = f"{factory.base_url}{factory.upload_path}/{quote(item.key, safe='/')}"
        if status in ("200", "204"):
            return Response(status_code=int(status), headers=headers)
        return JSONResponse(item_metadata(item), status_code=201, headers=headers)

    # endregion

    # region: download
    async def download(self, request: Request) -> Response:
        factory = self._factory(request)
        if factory is None:
            return error_response(404, "store_not_found")
        try:
            key = validate_key(request.path_params["key"])
            # Authorization, metadata and (for a small item) the content: one worker hop.
            return await anyio.to_thread.run_sync(self._download, factory, request, key)
        except PersistyDataError as exc:
            return response_for(exc)
        except _AuthError as exc:
            return error_response(exc.status, exc.code)

    def _download(self, factory: HostedDataStoreFactory, request: Request, key: str) -> Response:
        item = self._authorized_item(factory, request, key)
        if item is None:
            return error_response(404, "not_found", f"not_found: {key}")
        return self._item_response(request, item)

    def _authorized_item(self, factory: HostedDataStoreFactory, request: Request, key: str) -> Optional[DataItemABC]:
        query = request.query_params
        if "signature" in query or "expires" in query:
            if not factory.verify_download(key, query.get("expires", ""), query.get("signature", "")):
                raise _AuthError(403, "bad_or_expired_signature")
            return factory.get_store().read(key)
        authorization = self._authorization(request)
        store = factory.create(authorization)
        if store is None and authorization is None:
            raise _AuthError(401, "unauthorized")
        if store is None:
            raise _AuthError(403, "forbidden")
        return store.read(key)

    def _authorization(self, request: Request):
        header = request.headers.get("authorization")
        if not header:
            return None
        if not header.startswith("Bearer "):
            raise _AuthError(401, "unsupported_authorization")
        from servey.security.authorization import AuthorizationError

        try:
            return self.authorizer.authorize(header[7:])
        except (AuthorizationError, ValueError, TypeError):
            raise _AuthError(401, "invalid_token") from None

    def _item_response(self, request: Request, item: DataItemABC) -> Response:
        etag = f'"{item.etag}"'
        updated_at = item.updated_at.astimezone(timezone.utc).replace(microsecond=0)
        headers = {
            "ETag": etag,
            "Last-Modified": format_datetime(updated_at, usegmt=True),
            "Accept-Ranges": "bytes",
            "Cache-Control": "private, max-age=0, must-revalidate",
            **download_headers(item),
        }
        if _not_modified(request, item, etag, updated_at):
            return Response(status_code=304, headers=headers)
        start, end, status = 0, item.size, 200
        byte_range = _parse_range(request.headers.get("range"), item.size, request.headers.get("if-range"), etag)
        if byte_range == "unsatisfiable":
            return error_response(416, "range_not_satisfiable", headers={"Content-Range": f"bytes */{item.size}"})
        if byte_range is not None:
            start, end = byte_range
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{item.size}"
        headers["Content-Length"] = str(end - start)
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers)
        if end - start <= DOWNLOAD_CHUNK:
            return Response(item.read_bytes(start, end - start), status_code=status, headers=headers)
        reader = item.get_data_reader(start, end - start)
        first = _first_chunk(reader)  # an item already replaced is a 409, before any status is sent
        body = stream_body(first, reader, item.key, DOWNLOAD_CHUNK)
        return StreamingResponse(body, status_code=status, headers=headers)

    # endregion


class _AuthError(Exception):
    def __init__(self, status: int, code: str):
        super().__init__(code)
        self.status = status
        self.code = code


async def _feed_pipelined(upload: HostedUpload, chunks: AsyncIterator[bytes], batch: List[bytes]) -> List[bytes]:
    """Feed batch and then the rest of chunks, except the last batch, which is returned."""
    send: MemoryObjectSendStream[List[bytes]]
    receive: MemoryObjectReceiveStream[List[bytes]]
    send, receive = anyio.create_memory_object_stream(1)

    async def feed_batches() -> None:
        async with receive:
            async for ready in receive:
                await anyio.to_thread.run_sync(upload.feed_all, ready)

    size = FEED_BYTES
    async with anyio.create_task_group() as group:
        group.start_soon(feed_batches)
        async with send:
            async for chunk in chunks:
                if not chunk:
                    continue
                if size >= FEED_BYTES:
                    try:
                        await send.send(batch)
                    except anyio.BrokenResourceError:
                        break  # the feeder failed: the task group raises its error, the only one
                    batch, size = [], 0
                batch.append(chunk)
                size += len(chunk)
    return batch


def _single(exc: BaseException) -> BaseException:
    """
    What an upload failed of, from anyio's task group exception groups: our error if one
    is among them (it is the cause; a disconnect or a broken stream may come with it),
    else the only exception, else the group itself.
    """
    leaves = list(_leaves(exc))
    ours = [leaf for leaf in leaves if isinstance(leaf, PersistyDataError)]
    if ours:
        return ours[0]
    return leaves[0] if len(leaves) == 1 else exc


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    # By name: before Python 3.11 the group class comes from the exceptiongroup backport.
    members = getattr(exc, "exceptions", None)
    if type(exc).__name__.endswith("ExceptionGroup") and members:
        for member in members:
            yield from _leaves(member)
    else:
        yield exc


def _first_chunk(reader: BinaryIO) -> bytes:
    try:
        return reader.read(DOWNLOAD_CHUNK)
    except BaseException:
        reader.close()
        raise


def _position(digits: str, size: int) -> Optional[int]:
    """
    A byte position of a Range header, None if absent. Positions past the end all act
    alike, so one with more digits than size is read as size + 1: int() refuses strings
    of over 4300 digits, and a client may send them.
    """
    if not digits:
        return None
    significant = digits.lstrip("0") or "0"
    return size + 1 if len(significant) > len(str(size)) else int(significant)


def _not_modified(request: Request, item: DataItemABC, etag: str, updated_at: datetime) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        tags = [t.strip() for t in if_none_match.split(",")]
        return "*" in tags or etag in tags or f"W/{etag}" in tags
    if_modified_since = request.headers.get("if-modified-since")
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError, IndexError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=timezone.utc)
        return updated_at <= since
    return False


def _parse_range(header: Optional[str], size: int, if_range: Optional[str], etag: str):
    """(start, end) for a single satisfiable range, 'unsatisfiable', or None for the whole."""
    if not header or (if_range is not None and if_range.strip() != etag):
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if not match:
        return None  # multiple ranges or another unit: serve the whole content
    first, last = (_position(group, size) for group in match.groups())
    if first is None:
        if last is None:
            return None
        suffix = last
        if suffix == 0:
            return "unsatisfiable"
        if size == 0:
            # Satisfiable (RFC 9110 14.1.1) yet no Content-Range can describe zero bytes:
            # ignore the header and send the whole, empty, content.
            return None
        return max(size - suffix, 0), size
    start = first
    if start >= size:
        return "unsatisfiable"
    end = size if last is None else min(last + 1, size)
    if end <= start:
        return None  # last < first: invalid, ignore the header (RFC 9110)
    return start, end
