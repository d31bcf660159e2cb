"""Forms and URLs signed by S3 itself (SigV4): clients upload and download directly."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Dict, List

from persisty_data.data_item_abc import DataItemABC
from persisty_data.download_headers import download_headers
from persisty_data.factory.data_store_factory_abc import (
    DEFAULT_DOWNLOAD_EXPIRY,
    DEFAULT_UPLOAD_EXPIRY,
    DataStoreFactoryABC,
)
from persisty_data.factory.data_store_security_abc import DataStoreSecurityABC
from persisty_data.factory.owned_data_store_security import OwnedDataStoreSecurity
from persisty_data.s3.s3_data_store import S3DataStore
from persisty_data.s3.s3_errors import map_s3_errors
from persisty_data.upload_form import FormField, UploadForm

S3_POST_MAX_BYTES = 5 * 1024**3  # S3 refuses POST uploads above 5 GB


@dataclass
class S3DataStoreFactory(DataStoreFactoryABC):
    """
    Upload forms are SigV4 presigned POSTs whose policy binds the exact object key, the
    exact content type, a content-length-range up to the store's max item size (else S3's
    5 GB POST limit) and an expiry. Download URLs are SigV4 presigned GETs that make S3
    answer with the Content-Type and Content-Disposition of download_headers (signed
    response-content-type / response-content-disposition): whatever the object's own
    metadata says, only passive content is inline. S3 cannot add nosniff or a CSP.

    Objects uploaded through a form carry no sha256 metadata: the store computes their
    etag on first use and saves it back (see S3DataStore).
    """

    store: S3DataStore
    security: DataStoreSecurityABC = field(default_factory=OwnedDataStoreSecurity)
    upload_expiry: timedelta = DEFAULT_UPLOAD_EXPIRY
    download_expiry: timedelta = DEFAULT_DOWNLOAD_EXPIRY
    name: str = ""

    def __post_init__(self):
        self.name = self.name or self.store.get_meta().name

    def get_store(self) -> S3DataStore:
        return self.store

    def _create_upload_form(
        self, key: str, content_type: str, expire_at: datetime, extra_fields: Dict[str, str]
    ) -> UploadForm:
        max_size = self.store.get_meta().max_item_size
        max_size = S3_POST_MAX_BYTES if max_size is None else min(max_size, S3_POST_MAX_BYTES)
        s3_key = self.store._s3_key(key)
        conditions: List = [{"Content-Type": content_type}, ["content-length-range", 0, max_size]]
        conditions.extend({name: value} for name, value in extra_fields.items())
        with map_s3_errors(key):
            post = self.store.presigning_client.generate_presigned_post(
                Bucket=self.store.bucket,
                Key=s3_key,
                Fields={"Content-Type": content_type, **extra_fields},
                Conditions=conditions,
                ExpiresIn=_seconds_until(expire_at),
            )
        fields = [FormField(name, str(value)) for name, value in post["fields"].items()]
        return UploadForm(url=post["url"], fields=fields, expire_at=expire_at)

    def _create_download_url(self, item: DataItemABC, expire_at: datetime) -> str:
        headers = download_headers(item)
        params = {
            "Bucket": self.store.bucket,
            "Key": self.store._s3_key(item.key),
            "ResponseContentType": headers["Content-Type"],
            "ResponseContentDisposition": headers["Content-Disposition"],
        }
        with map_s3_errors(item.key):
            return self.store.presigning_client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=_seconds_until(expire_at)
            )


def _seconds_until(expire_at: datetime) -> int:
    """
    ExpiresIn for boto3, so that a URL or form expires at expire_at (whole seconds). boto3
    dates the signature (X-Amz-Date) and the policy from the current second, truncated:
    counting from the fractional now would give one second less (3599 for an hour) and a
    policy that expires a second before the form's expire_at.
    """
    now = datetime.now(timezone.utc).replace(microsecond=0)
    return max(1, int((expire_at - now).total_seconds()))
