"""DataStoreFactoryABC: one policy for direct use, upload forms and download URLs."""

from abc import ABC, abstractmethod
from datetime import datetime, timedelta, timezone
from typing import Dict, List, Optional

from persisty.search_filter.exclude_all import EXCLUDE_ALL
from persisty.security.store_access import ALL_ACCESS, StoreAccess
from servey.security.authorization import Authorization

from persisty_data.data_item_abc import DataItemABC
from persisty_data.data_store_abc import DataStoreABC
from persisty_data.errors import ForbiddenError
from persisty_data.factory.data_store_security_abc import DataStoreSecurityABC
from persisty_data.factory.restrict_access_data_store import RestrictAccessDataStore
from persisty_data.keys import is_valid_key
from persisty_data.upload_form import UploadForm

DEFAULT_UPLOAD_EXPIRY = timedelta(minutes=15)
DEFAULT_DOWNLOAD_EXPIRY = timedelta(hours=1)
MAX_EXPIRY = timedelta(days=7)  # SigV4's own limit for presigned requests


class DataStoreFactoryABC(ABC):
    """
    Makes a data store available to callers under one security policy. create() gives
    the store as the caller may use it; get_upload_form() and get_download_url() hand out
    signed forms and URLs, and only for what the caller could do directly: the same
    policy decides all three.
    """

    name: str
    security: DataStoreSecurityABC
    upload_expiry: timedelta = DEFAULT_UPLOAD_EXPIRY
    download_expiry: timedelta = DEFAULT_DOWNLOAD_EXPIRY

    @abstractmethod
    def get_store(self) -> DataStoreABC:
        """The store with full access: for internal use only, never for callers."""

    def get_access(self, authorization: Optional[Authorization]) -> StoreAccess:
        return self.security.get_access(self.get_store().get_meta(), authorization)

    def create(self, authorization: Optional[Authorization]) -> Optional[DataStoreABC]:
        """The store as this caller may use it, or None if the caller may do nothing."""
        store = self.get_store()
        access = self.get_access(authorization)
        if access == ALL_ACCESS:
            return store
        secured = RestrictAccessDataStore(store, access)
        filters = (secured.access.read_filter, secured.access.create_filter, secured.access.update_filter)
        if all(f is EXCLUDE_ALL for f in filters + (secured.access.delete_filter,)):
            return None
        return secured

    def get_upload_form(
        self,
        key: str,
        authorization: Optional[Authorization],
        content_type: Optional[str] = None,
        expire_in: Optional[timedelta] = None,
        success_action_status: Optional[int] = None,
        success_action_redirect: Optional[str] = None,
    ) -> Optional[UploadForm]:
        """
        A form that uploads exactly key, with the content type given (else guessed from
        the key), within the store's size limit, until it expires; None if the caller
        may not upload key. success_action_status (200, 201 or 204) or
        success_action_redirect (a URL the browser is sent to after the upload) are bound
        into the form's policy, as on S3.

        :raises InvalidKeyError: for an invalid key.
        :raises ContentTypeNotPermittedError: if the store does not permit the type.
        """
        secured = self._secured(authorization)
        if secured is None:
            return None
        try:
            content_type = secured.check_writable(key, content_type)
        except ForbiddenError:
            return None
        expire_at = _expire_at(expire_in or self.upload_expiry)
        extra_fields: Dict[str, str] = {}
        if success_action_status is not None:
            if success_action_status not in (200, 201, 204):
                raise ValueError(f"success_action_status_must_be_200_201_or_204:{success_action_status}")
            extra_fields["success_action_status"] = str(success_action_status)
        if success_action_redirect is not None:
            extra_fields["success_action_redirect"] = success_action_redirect
        return self._create_upload_form(key, content_type, expire_at, extra_fields)

    def get_download_url(
        self,
        key: str,
        authorization: Optional[Authorization],
        expire_in: Optional[timedelta] = None,
    ) -> Optional[str]:
        """A URL that downloads key until it expires; None if missing or not readable."""
        store = self.create(authorization)
        item = store.read(key) if store is not None else None
        if item is None:
            return None
        return self._create_download_url(item, _expire_at(expire_in or self.download_expiry))

    def get_download_urls(
        self,
        keys: List[Optional[str]],
        authorization: Optional[Authorization],
        expire_in: Optional[timedelta] = None,
    ) -> List[Optional[str]]:
        """
        get_download_url for many keys at once, reading metadata in batches: a URL per
        key, None where the key is None, invalid, missing or not readable.
        """
        store = self.create(authorization)
        urls: List[Optional[str]] = [None] * len(keys)
        if store is None:
            return urls
        expire_at = _expire_at(expire_in or self.download_expiry)
        wanted = [(i, k) for i, k in enumerate(keys) if isinstance(k, str) and is_valid_key(k)]
        batch_size = store.get_meta().batch_size
        for start in range(0, len(wanted), batch_size):
            batch = wanted[start : start + batch_size]
            items = store.read_batch([k for _, k in batch])
            for (index, _), item in zip(batch, items):
                if item is not None:
                    urls[index] = self._create_download_url(item, expire_at)
        return urls

    def _secured(self, authorization: Optional[Authorization]) -> Optional[RestrictAccessDataStore]:
        store = self.create(authorization)
        if store is None:
            return None
        if isinstance(store, RestrictAccessDataStore):
            return store
        return RestrictAccessDataStore(store, ALL_ACCESS)

    @abstractmethod
    def _create_upload_form(
        self, key: str, content_type: str, expire_at: datetime, extra_fields: Dict[str, str]
    ) -> UploadForm:
        """A signed form for an upload the policy allows; extra_fields are bound exactly."""

    @abstractmethod
    def _create_download_url(self, item: DataItemABC, expire_at: datetime) -> str:
        """A signed URL for an item the policy lets the caller read."""


def _expire_at(expire_in: timedelta) -> datetime:
    expire_in = min(expire_in, MAX_EXPIRY)
    return (datetime.now(timezone.utc) + expire_in).replace(microsecond=0)
