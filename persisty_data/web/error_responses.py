"""The HTTP face of our errors: a status per error class and a JSON body with a stable code."""

import logging
from typing import Optional, Tuple

from starlette.responses import JSONResponse

from persisty_data import errors
from persisty_data.download_headers import SECURITY_HEADERS

LOGGER = logging.getLogger(__name__)


# Most specific first. UploadRejectedError is 403 as on S3 (a policy refused the upload);
# malformed requests are 400.
STATUS_BY_ERROR: Tuple[Tuple[type, int], ...] = (
    (errors.KeyConflictError, 409),
    (errors.InvalidKeyError, 400),
    (errors.InvalidRangeError, 416),
    (errors.InvalidSearchError, 400),
    (errors.ForbiddenError, 403),
    (errors.ItemTooLargeError, 413),
    (errors.MalformedContentTypeError, 415),
    (errors.ContentTypeNotPermittedError, 415),
    (errors.MalformedUploadError, 400),
    (errors.UploadRejectedError, 403),
    (errors.ContentChangedError, 409),
    (errors.UploadExpiredError, 408),  # the client was too slow: its upload was collected
    (errors.UnsupportedOperationError, 405),
    (errors.StorageUnavailableError, 503),
    # Our own stored bytes are bad: a server fault, not a gateway's (S3 answered fine).
    (errors.ContentCorruptedError, 500),
    (errors.StorageError, 500),
    (errors.ConfigurationError, 500),
    (errors.PersistyDataError, 500),
)


def status_for(error: errors.PersistyDataError) -> int:
    return next(status for cls, status in STATUS_BY_ERROR if isinstance(error, cls))


def error_response(status: int, code: str, message: Optional[str] = None, headers=None) -> JSONResponse:
    return JSONResponse(
        {"error_code": code, "error_msg": message or code},
        status_code=status,
        headers={**SECURITY_HEADERS, "Cache-Control": "no-store", **(headers or {})},
    )


def response_for(error: errors.PersistyDataError) -> JSONResponse:
    status = status_for(error)
    if status >= 500:
        LOGGER.error("server side failure: %s", error, exc_info=error)
    # Server-side failures do not echo internals (paths, SQL) to the client.
    message = str(error) if status < 500 else error.code
    return error_response(status, error.code, message)
