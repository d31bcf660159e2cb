"""Policies built from persisty's security vocabulary decide direct use, forms and URLs alike."""

import pytest
from persisty.security.named_permission import NamedPermission
from persisty.security.store_access import NO_ACCESS
from persisty.security.store_security import INTERNAL_ONLY, UNSECURED, StoreSecurity
from servey.security.authorization import Authorization

from persisty_data.directory.directory_data_store import DirectoryDataStore
from persisty_data.errors import ForbiddenError
from persisty_data.factory.hosted_data_store_factory import HostedDataStoreFactory
from persisty_data.factory.owned_data_store_security import OwnedDataStoreSecurity


def _user(name, *scopes):
    return Authorization(name, frozenset(scopes), None, None)


EDITOR = _user("ed", "editor")
VIEWER = _user("vi", "viewer")
NOBODY = _user("no")

SCOPED = StoreSecurity(
    default_access=NO_ACCESS,
    scoped_permissions=(
        NamedPermission("editor", create_filter="{}", read_filter="{}", update_filter="{}", delete_filter="{}"),
        # viewers read and list only what is under public/ (a JSON filter of persisty's API)
        NamedPermission("viewer", read_filter='{"key__startswith": "public/"}'),
    ),
)


@pytest.fixture
def factory(tmp_path):
    def make(security):
        store = DirectoryDataStore(str(tmp_path / f"root-{id(security)}"), name="docs")
        store.write_bytes("public/a.txt", b"public")
        store.write_bytes("Public/b.txt", b"case matters")
        store.write_bytes("private/c.txt", b"private")
        return HostedDataStoreFactory(store, secret="s" * 32, security=security)

    return make


def test_scope_based_permissions(factory):
    docs = factory(SCOPED)
    editor = docs.create(EDITOR)
    assert editor.write_bytes("private/new.txt", b"x").size == 1
    assert editor.delete("private/new.txt")
    assert docs.get_upload_form("anything/at/all.txt", EDITOR) is not None

    viewer = docs.create(VIEWER)
    assert [i.key for i in viewer.search_all()] == ["public/a.txt"]
    assert viewer.count() == 1
    assert viewer.read("private/c.txt") is None
    assert viewer.read("Public/b.txt") is None  # prefixes are exact: case-sensitive
    with pytest.raises(ForbiddenError):
        viewer.write_bytes("public/new.txt", b"x")
    with pytest.raises(ForbiddenError):
        viewer.delete("public/a.txt")
    assert viewer.read("public/a.txt").read_bytes() == b"public"
    assert docs.get_upload_form("public/new.txt", VIEWER) is None
    assert docs.get_download_url("public/a.txt", VIEWER) is not None
    assert docs.get_download_url("private/c.txt", VIEWER) is None

    assert docs.create(NOBODY) is None
    assert docs.create(None) is None
    assert docs.get_upload_form("public/x.txt", None) is None
    assert docs.get_download_url("public/a.txt", NOBODY) is None


def test_unsecured_and_internal_only(factory):
    open_docs = factory(UNSECURED)
    assert open_docs.create(None) is open_docs.get_store()
    assert open_docs.get_upload_form("any.txt", None) is not None
    assert open_docs.get_download_url("private/c.txt", None) is not None

    internal = factory(INTERNAL_ONLY)
    root = _user(None, "root")
    for caller in (None, NOBODY, EDITOR, root):
        assert internal.create(caller) is None
        assert internal.get_upload_form("public/a.txt", caller) is None
        assert internal.get_download_url("public/a.txt", caller) is None
    assert internal.get_store().read("public/a.txt") is not None  # still usable internally


def test_ownership_with_odd_subjects(factory):
    docs = factory(OwnedDataStoreSecurity(read_by_others=True))
    for subject in ("", "a/b", "..", "bad\x00id", None):
        caller = Authorization(subject, frozenset(), None, None)
        assert docs.create(caller) is None, subject
        assert docs.get_upload_form(f"{subject or 'x'}/k.txt", caller) is None
    alice = _user("alice")
    assert docs.get_upload_form("alice/k.txt", alice) is not None
    assert docs.get_upload_form("alicex/k.txt", alice) is None
    assert docs.get_upload_form("alice", alice) is None
    assert docs.create(alice).read("private/c.txt") is not None  # read_by_others
