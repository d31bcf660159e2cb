"""Location: what a command line operand names (an item or prefix in a store, a local file, stdio)."""

from dataclasses import dataclass
from typing import Optional

from persisty_data.config._settings import STORE_NAME

STDIO = "-"


@dataclass(frozen=True)
class Location:
    """
    ``STORE:KEY`` is an item (``STORE:`` or ``STORE:folder/``, ending in '/', is a prefix).
    ``-`` is stdin or stdout. Anything else is a local path; a local path whose first
    ':' follows a valid store name must be written ``./name:rest``.
    """

    text: str
    store: Optional[str] = None
    key: str = ""

    @property
    def is_store(self) -> bool:
        return self.store is not None

    @property
    def is_stdio(self) -> bool:
        return self.store is None and self.text == STDIO

    @property
    def is_prefix(self) -> bool:
        """An empty key, or one ending in '/': items go under it, named after their source."""
        return self.key == "" or self.key.endswith("/")

    @property
    def path(self) -> str:
        assert self.store is None, "a store location has no local path"
        return self.text

    def join(self, name: str) -> str:
        """The key for an item called name: the key itself, or name under the prefix."""
        return self.key + name if self.is_prefix else self.key

    def __str__(self) -> str:
        return f"{self.store}:{self.key}" if self.store is not None else self.text


def parse_location(text: str) -> Location:
    store, colon, key = text.partition(":")
    if colon and STORE_NAME.match(store):
        return Location(text, store, key)
    return Location(text)
