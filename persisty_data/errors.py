"""
One error hierarchy for every backend. Native errors (OSError, botocore, SQLAlchemy)
are mapped to these at the backend edge and never reach a caller.

PersistyError (persisty.errors)
└── PersistyDataError            .code, .key, .store_name
    ├── InvalidKeyError          key breaks the key rules
    │   └── KeyConflictError     key collides with another item (file vs directory)
    ├── InvalidRangeError        negative offset or length
    ├── InvalidSearchError       unknown attribute, bad operator, order, page key or limit
    ├── ForbiddenError           the caller may not do this
    ├── ItemTooLargeError        more bytes written than the store's max item size
    ├── ContentTypeNotPermittedError  the store does not take this content type
    │   └── MalformedContentTypeError  not a media type (RFC 9110): no store takes it
    ├── UploadRejectedError      bad / expired signature or policy
    │   └── MalformedUploadError the upload request itself is broken (not multipart...)
    ├── ContentChangedError      the item was replaced or deleted while being read
    ├── UploadExpiredError       a write's upload was collected as dead before it closed
    ├── UnsupportedOperationError
    ├── ConfigurationError       a store or factory is misconfigured
    └── StorageError             the backend failed
        ├── StorageUnavailableError   the backend cannot be reached
        └── ContentCorruptedError     a full read's bytes do not hash to the item's etag

A missing item is not an error: read() returns None and delete() returns False.
"""

from typing import Optional

from persisty.errors import PersistyError


class PersistyDataError(PersistyError):
    """Base of every error raised by persisty_data. ``str(error)`` is ``code`` plus detail."""

    code = "persisty_data_error"

    def __init__(
        self,
        detail: Optional[str] = None,
        *,
        key: Optional[str] = None,
        store_name: Optional[str] = None,
    ):
        self.detail = detail
        self.key = key
        self.store_name = store_name
        message = self.code
        if detail:
            message = f"{message}: {detail}"
        if key is not None:
            message = f"{message} (key={key!r})"
        super().__init__(message)


class InvalidKeyError(PersistyDataError):
    code = "invalid_key"


class KeyConflictError(InvalidKeyError):
    code = "key_conflict"


class InvalidRangeError(PersistyDataError):
    code = "invalid_range"


class InvalidSearchError(PersistyDataError):
    code = "invalid_search"


class ForbiddenError(PersistyDataError):
    code = "forbidden"


class ItemTooLargeError(PersistyDataError):
    code = "item_too_large"


class ContentTypeNotPermittedError(PersistyDataError):
    code = "content_type_not_permitted"


class MalformedContentTypeError(ContentTypeNotPermittedError):
    code = "malformed_content_type"


class UploadRejectedError(PersistyDataError):
    code = "upload_rejected"


class MalformedUploadError(UploadRejectedError):
    code = "malformed_upload"


class ContentChangedError(PersistyDataError):
    code = "content_changed"


class UploadExpiredError(PersistyDataError):
    """
    The write went quiet for longer than a cleanup's age limit, which collected its
    upload as abandoned: nothing was published, the previous content stays.
    """

    code = "upload_expired"


class UnsupportedOperationError(PersistyDataError):
    code = "unsupported_operation"


class ConfigurationError(PersistyDataError):
    code = "configuration_error"


class StorageError(PersistyDataError):
    code = "storage_error"


class StorageUnavailableError(StorageError):
    code = "storage_unavailable"


class ContentCorruptedError(StorageError):
    """
    The stored bytes are not the content the item describes (their SHA-256 or length
    differs from the item's etag or size): damaged at rest or rewritten behind the
    store's back. Raised at the end of a full read; retrying does not help.
    """

    code = "content_corrupted"
