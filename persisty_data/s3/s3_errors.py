"""The one place where botocore errors become persisty_data errors for the S3 store."""

from contextlib import contextmanager
from typing import Iterator, Optional, Type

from botocore.exceptions import (
    BotoCoreError,
    ChecksumError,
    ClientError,
    CredentialRetrievalError,
    DataNotFoundError,
    FlexibleChecksumError,
    HTTPClientError,
    IncompleteReadError,
    InvalidConfigError,
    InvalidRegionError,
    InvalidS3AddressingStyleError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
    RefreshWithMFAUnsupportedError,
    SSOError,
    TokenRetrievalError,
    UnknownEndpointError,
    UnknownRegionError,
    UnsupportedS3ArnError,
    UnsupportedS3ConfigurationError,
    UnsupportedSignatureVersionError,
    ValidationError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from persisty_data.errors import (
    ConfigurationError,
    ContentChangedError,
    ForbiddenError,
    InvalidRangeError,
    ItemTooLargeError,
    PersistyDataError,
    StorageError,
    StorageUnavailableError,
    UnsupportedOperationError,
)

# S3 error codes (and the bare status codes HEAD responses carry, having no body).
NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound", "NoSuchVersion"})
PRECONDITION_CODES = frozenset({"PreconditionFailed", "412"})
NO_SUCH_UPLOAD_CODES = frozenset({"NoSuchUpload"})
NOT_IMPLEMENTED_CODES = frozenset({"NotImplemented", "501"})
MISSING_BUCKET_CODES = frozenset({"NoSuchBucket"})
FORBIDDEN_CODES = frozenset({"AccessDenied", "AccessDeniedException", "AllAccessDisabled", "403", "Forbidden"})
# The store's credentials, region or endpoint are wrong: retrying cannot help.
CONFIGURATION_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "TokenRefreshRequired",
        "InvalidSecurity",
        "AuthorizationHeaderMalformed",
        "PermanentRedirect",
        "301",
        "IllegalLocationConstraintException",
        "InvalidBucketName",
        "AccountProblem",
    }
)
# Still failing after botocore's retries (standard mode retries all of these).
UNAVAILABLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "BandwidthLimitExceeded",
        "ProvisionedThroughputExceededException",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "TransactionInProgressException",
        "503",
        "500",
        "502",
        "504",
        "429",
    }
)
CHECKSUM_CODES = frozenset({"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "InvalidChecksum"})

_UNAVAILABLE_TYPES = (BotoConnectionError, HTTPClientError, IncompleteReadError)
_CONFIGURATION_TYPES = (
    NoCredentialsError,
    PartialCredentialsError,
    CredentialRetrievalError,
    RefreshWithMFAUnsupportedError,
    TokenRetrievalError,
    SSOError,
    NoRegionError,
    UnknownRegionError,
    InvalidRegionError,
    UnknownEndpointError,
    ProfileNotFound,
    InvalidConfigError,
    InvalidS3AddressingStyleError,
    UnsupportedS3ArnError,
    UnsupportedS3ConfigurationError,
    UnsupportedSignatureVersionError,
    DataNotFoundError,
    ParamValidationError,  # e.g. a malformed bucket name
    ValidationError,
)
_CHECKSUM_TYPES = (FlexibleChecksumError, ChecksumError)


def error_code(exc: BaseException) -> str:
    """The S3 error code of a ClientError ('' for anything else)."""
    if not isinstance(exc, ClientError):
        return ""
    response = exc.response or {}
    code = str(response.get("Error", {}).get("Code") or "")
    if not code:
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = str(status or "")
    return code


def _status(exc: ClientError) -> int:
    status = (exc.response or {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else 0


def map_exception(
    exc: BaseException,
    key: Optional[str] = None,
    store_name: Optional[str] = None,
    bucket: Optional[str] = None,
) -> PersistyDataError:
    """The persisty_data error for a botocore exception (see map_s3_errors)."""
    cls: Type[PersistyDataError]
    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = _status(exc)
        if code in MISSING_BUCKET_CODES:
            cls, detail = ConfigurationError, f"bucket_not_found:{bucket}"
        elif code in FORBIDDEN_CODES or (status == 403 and code not in CONFIGURATION_CODES):
            cls, detail = ForbiddenError, f"access_denied:{code}"
        elif code in CONFIGURATION_CODES:
            cls, detail = ConfigurationError, f"s3_refused_configuration:{code}"
        elif code in NOT_IMPLEMENTED_CODES or status == 501:
            # The endpoint lacks the feature: permanent, unlike the other 5xx.
            cls, detail = UnsupportedOperationError, f"s3_not_implemented:{code}"
        elif code in UNAVAILABLE_CODES or status == 429 or status >= 500:
            cls, detail = StorageUnavailableError, f"s3_unavailable:{code}"
        elif code in PRECONDITION_CODES:
            cls, detail = ContentChangedError, "item_replaced"
        elif code in NOT_FOUND_CODES:
            cls, detail = ContentChangedError, "item_deleted"
        elif code == "InvalidRange":
            cls, detail = InvalidRangeError, code
        elif code == "EntityTooLarge":
            cls, detail = ItemTooLargeError, code
        elif code in CHECKSUM_CODES:
            cls, detail = StorageError, f"checksum_mismatch:{code}"
        else:
            cls, detail = StorageError, f"s3_error:{code}"
    elif isinstance(exc, _CHECKSUM_TYPES):
        cls, detail = StorageError, f"checksum_mismatch:{type(exc).__name__}"
    elif isinstance(exc, _UNAVAILABLE_TYPES):
        cls, detail = StorageUnavailableError, f"s3_unreachable:{type(exc).__name__}"
    elif isinstance(exc, _CONFIGURATION_TYPES):
        cls, detail = ConfigurationError, f"s3_client_misconfigured:{type(exc).__name__}"
    else:
        cls, detail = StorageError, f"s3_client_error:{type(exc).__name__}"
    return cls(detail, key=key, store_name=store_name)


@contextmanager
def map_s3_errors(
    key: Optional[str] = None,
    store_name: Optional[str] = None,
    bucket: Optional[str] = None,
) -> Iterator[None]:
    """
    Turn every botocore exception raised inside the block into a persisty_data error:

    =====================================================  ==========================
    NoSuchBucket                                           ConfigurationError
    AccessDenied, AllAccessDisabled, any other 403         ForbiddenError
    bad credentials / token, wrong region, bad bucket      ConfigurationError
    name, no credentials or region in the boto3 chain
    NotImplemented (501): the endpoint lacks a feature     UnsupportedOperationError
    SlowDown / throttling / 5xx / 429 after the retries,   StorageUnavailableError
    connection refused, timeouts, broken response stream
    PreconditionFailed (412), NoSuchKey (404)              ContentChangedError
    InvalidRange                                           InvalidRangeError
    EntityTooLarge                                         ItemTooLargeError
    checksum mismatches, anything else                     StorageError
    =====================================================  ==========================

    A missing bucket is a ConfigurationError rather than a StorageError: the store was
    pointed at a bucket that does not exist, and no retry will create it.
    Callers that expect a code (404 on HEAD, 412 on a conditional request) catch the
    ClientError inside the block and re-raise what they do not handle.
    """
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise map_exception(exc, key, store_name, bucket) from exc
