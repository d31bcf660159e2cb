"""What a store's gc() removed (or, in a dry run, would remove)."""

from dataclasses import dataclass, field
from typing import List, Optional


@dataclass(frozen=True)
class GcDebris:
    """
    One piece of crash debris. kind names what it is (``temp_file``, ``sidecar``,
    ``upload``, ``multipart_upload``, ``temp_key``); name identifies it within the store
    (a path below the root, an upload id, an S3 key...); size_in_bytes is what it
    occupies, where the backend can tell cheaply.
    """

    kind: str
    name: str
    size_in_bytes: Optional[int] = None
    key: Optional[str] = None


@dataclass
class GcReport:
    store_name: str
    dry_run: bool
    removed: List[GcDebris] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.removed)

    @property
    def size_in_bytes(self) -> int:
        return sum(d.size_in_bytes or 0 for d in self.removed)

    def add(self, kind: str, name: str, size_in_bytes: Optional[int] = None, key: Optional[str] = None) -> None:
        self.removed.append(GcDebris(kind, name, size_in_bytes, key))
