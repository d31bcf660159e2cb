"""
The body of a streamed download, and what happens when the item changes under it.

Once the status and Content-Length are sent, a failure can only be told to the client by
closing the connection before the last byte: the client sees a truncated body. ASGI has
one way to ask a server for that, raising from the app, and uvicorn logs any such
exception with its traceback as a server error. A download cut short because the item was
replaced or deleted is not a server error: it is logged here as one warning line, and the
exception that aborts the response (DownloadCutShort) is kept out of uvicorn's log by a
filter. Other servers log it in their own way.
"""

import logging
from typing import BinaryIO, Iterator

from persisty_data.errors import PersistyDataError
from persisty_data.web.error_responses import status_for

LOGGER = logging.getLogger(__name__)
SERVER_LOGGERS = ("uvicorn.error",)  # where uvicorn logs exceptions raised by the app


class DownloadCutShort(Exception):
    """Raised to the server to end a response early; already logged (see the module)."""


def stream_body(first: bytes, reader: BinaryIO, key: str, chunk_size: int) -> Iterator[bytes]:
    """
    first, then the rest of reader, chunk_size bytes at a time. Sync: starlette runs it in
    a worker thread, a chunk at a time. The reader is closed in every case.
    """
    with reader:
        chunk = first
        while chunk:
            yield chunk
            try:
                chunk = reader.read(chunk_size)
            except PersistyDataError as exc:
                _log_cut_short(key, exc)
                raise DownloadCutShort(exc.code) from None


def _log_cut_short(key: str, error: PersistyDataError) -> None:
    if status_for(error) < 500:
        LOGGER.warning("download_cut_short key=%r: %s", key, error)
    else:  # the backend failed: a server error, with what the backend said
        LOGGER.error("download_cut_short key=%r", key, exc_info=error)


class _DropCutShort(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not _carries_cut_short(error)


def _carries_cut_short(error: object) -> bool:
    if isinstance(error, DownloadCutShort):
        return True
    members = getattr(error, "exceptions", None)  # an exception group from a task group
    return bool(members) and any(_carries_cut_short(member) for member in members)  # type: ignore[union-attr]


_FILTER = _DropCutShort()


def keep_cut_short_downloads_out_of_server_logs() -> None:
    """Idempotent: a filter on the server loggers that drops records of DownloadCutShort."""
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
