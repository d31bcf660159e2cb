"""Forms and URLs signed by the app, served by its own upload and download routes."""

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Dict, List, Union
from urllib.parse import quote, urlencode

from persisty_data.data_item_abc import DataItemABC
from persisty_data.data_store_abc import DataStoreABC
from persisty_data.errors import ConfigurationError
from persisty_data.factory.data_store_factory_abc import (
    DEFAULT_DOWNLOAD_EXPIRY,
    DEFAULT_UPLOAD_EXPIRY,
    DataStoreFactoryABC,
)
from persisty_data.factory.data_store_security_abc import DataStoreSecurityABC
from persisty_data.factory.owned_data_store_security import OwnedDataStoreSecurity
from persisty_data.post_policy import (
    POLICY_FIELD,
    SIGNATURE_FIELD,
    build_policy,
    encode_policy,
    sign,
    verify_signature,
)
from persisty_data.upload_form import FormField, UploadForm

MIN_SECRET_BYTES = 32
DEFAULT_PATH_PREFIX = "/data"


def download_message(store_name: str, key: str, expires: int) -> str:
    """What a hosted download signature covers: method, store, exact key and expiry."""
    return f"GET\n{store_name}\n{key}\n{expires}"


@dataclass
class HostedDataStoreFactory(DataStoreFactoryABC):
    """
    Upload forms carry an S3-style POST policy (bucket = store name, exact key, exact
    content type, content-length-range up to the store's max item size, expiry) signed
    with HMAC-SHA256 under ``secret``; the app's upload route verifies it before anything
    is published. Download URLs carry an expiry and an HMAC over store, key and expiry.

    base_url is the app's public origin (e.g. https://example.com); without it, form and
    URL paths are relative, which browsers accept but other clients may not.
    """

    store: DataStoreABC
    secret: Union[str, bytes] = field(repr=False)
    security: DataStoreSecurityABC = field(default_factory=OwnedDataStoreSecurity)
    base_url: str = ""
    path_prefix: str = DEFAULT_PATH_PREFIX
    upload_expiry: timedelta = DEFAULT_UPLOAD_EXPIRY
    download_expiry: timedelta = DEFAULT_DOWNLOAD_EXPIRY
    name: str = ""

    def __post_init__(self):
        self.name = self.name or self.store.get_meta().name
        if isinstance(self.secret, str):
            self.secret = self.secret.encode("utf-8")
        if not self.secret or len(self.secret) < MIN_SECRET_BYTES:
            raise ConfigurationError(f"secret_must_have_at_least_{MIN_SECRET_BYTES}_bytes", store_name=self.name)
        self.base_url = self.base_url.rstrip("/")
        self.path_prefix = "/" + self.path_prefix.strip("/") if self.path_prefix.strip("/") else ""

    def get_store(self) -> DataStoreABC:
        return self.store

    @property
    def secret_bytes(self) -> bytes:
        """The signing key: secret as bytes (__post_init__ already encodes a str secret)."""
        secret = self.secret
        return secret.encode("utf-8") if isinstance(secret, str) else secret

    @property
    def upload_path(self) -> str:
        return f"{self.path_prefix}/{self.name}"

    def _create_upload_form(
        self, key: str, content_type: str, expire_at: datetime, extra_fields: Dict[str, str]
    ) -> UploadForm:
        conditions: List = [{"bucket": self.name}, {"key": key}, {"Content-Type": content_type}]
        conditions.extend({name: value} for name, value in extra_fields.items())
        max_item_size = self.store.get_meta().max_item_size
        if max_item_size is not None:
            conditions.append(["content-length-range", 0, max_item_size])
        policy = encode_policy(build_policy(expire_at, conditions))
        fields = [
            FormField("key", key),
            FormField("Content-Type", content_type),
            *(FormField(name, value) for name, value in extra_fields.items()),
            FormField(POLICY_FIELD, policy),
            FormField(SIGNATURE_FIELD, sign(self.secret_bytes, policy)),
        ]
        return UploadForm(url=self.base_url + self.upload_path, fields=fields, expire_at=expire_at)

    def _create_download_url(self, item: DataItemABC, expire_at: datetime) -> str:
        expires = int(expire_at.timestamp())
        signature = sign(self.secret_bytes, download_message(self.name, item.key, expires))
        query = urlencode({"expires": expires, "signature": signature})
        return f"{self.base_url}{self.upload_path}/{quote(item.key, safe='/')}?{query}"

    def verify_download(self, key: str, expires: str, signature: str) -> bool:
        """True if (expires, signature) is a live download signature for key."""
        try:
            expires_at = int(expires)
        except (TypeError, ValueError):
            return False
        if expires_at <= time.time():
            return False
        return verify_signature(self.secret_bytes, download_message(self.name, key, expires_at), signature)
