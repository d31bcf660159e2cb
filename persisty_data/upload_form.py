"""UploadForm: what a client posts, as multipart/form-data, to upload one item."""

from dataclasses import dataclass
from datetime import datetime
from typing import Dict, List


@dataclass(frozen=True)
class FormField:
    name: str
    value: str


@dataclass(frozen=True)
class UploadForm:
    """
    Post ``fields`` (in order) plus the file as the part named ``file_param`` (last) to
    ``url`` as multipart/form-data. The shape is the same for S3 and for the hosted
    endpoint, so one client works against both. The form stops working at ``expire_at``.
    """

    url: str
    fields: List[FormField]
    expire_at: datetime
    method: str = "POST"
    file_param: str = "file"

    def fields_dict(self) -> Dict[str, str]:
        return {f.name: f.value for f in self.fields}
