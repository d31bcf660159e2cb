"""
DataStoreRoutes over real HTTP (uvicorn on 127.0.0.1, httpx and curl), on a directory
store and on a chunk store over SQLite: uploads, downloads, and hostile uploads that must
store nothing, keep the previous content and leave no debris.
"""

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
import traceback
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime, parsedate_to_datetime
from typing import Callable, Dict, Optional
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from persisty.security.store_security import INTERNAL_ONLY
from starlette.applications import Starlette

from persisty_data.chunk.chunk_data_store import ChunkDataStore
from persisty_data.chunk.sql_store_factory import SqlStoreFactory
from persisty_data.directory.directory_data_store import DirectoryDataStore
from persisty_data.download_headers import MEDIA_DOCUMENT_CSP
from persisty_data.errors import ContentTypeNotPermittedError, InvalidKeyError
from persisty_data.factory.hosted_data_store_factory import HostedDataStoreFactory, download_message
from persisty_data.factory.owned_data_store_security import OwnedDataStoreSecurity
from persisty_data.post_policy import (
    POLICY_FIELD,
    SIGNATURE_FIELD,
    build_policy,
    decode_policy,
    encode_policy,
    sign,
)
from persisty_data.web.data_store_routes import DataStoreRoutes
from tests.backends import ChunkSqliteBackend, corrupt_file
from tests.servers import serve
from tests.web.support import (
    ADMIN,
    ALICE,
    AUTHORIZER,
    BOB,
    EXPIRED_ALICE,
    RecordErrors,
    bearer,
    debris,
    encode_multipart,
    file_part,
    form_fields,
    has_failed,
    replace_field,
    storage_state,
)

SECRET = b"hosted-routes-test-secret-0123456789abcdef"
FILES_MAX = 1536 * 1024  # big enough that over-size uploads store something before they fail
ORIGINAL = b"the original content\n"
MIB = 1024 * 1024


@dataclass
class Site:
    backend: str
    url: str
    client: httpx.Client
    root: str
    files: HostedDataStoreFactory  # owned keys, FILES_MAX
    big: HostedDataStoreFactory  # owned keys, no size limit
    images: HostedDataStoreFactory  # owned keys, image/* only
    vault: HostedDataStoreFactory  # nobody gets forms (INTERNAL_ONLY), same secret as the others
    app: "RecordErrors"

    def factory(self, name: str) -> HostedDataStoreFactory:
        return getattr(self, name)


def _check_nosniff(response: httpx.Response) -> None:
    """Every answer of the data routes carries nosniff (redirects excepted: no body to sniff)."""
    if response.request.url.path.startswith("/data/") and not response.is_redirect:
        assert response.headers.get("x-content-type-options") == "nosniff", (response.status_code, response.url)


@pytest.fixture(scope="module", params=["directory", "chunk_sqlite"])
def site(request, tmp_path_factory):
    root = str(tmp_path_factory.mktemp(f"routes-{request.param}"))

    if request.param == "directory":

        def make(name, **options):
            return DirectoryDataStore(os.path.join(root, name), name=name, **options)

    else:
        sql = SqlStoreFactory(f"sqlite:///{os.path.join(root, 'data.sqlite')}")

        def make(name, **options):
            chunk_size = 1024 * 1024 if name == "big" else 64 * 1024
            return ChunkDataStore(name, sql, chunk_size=chunk_size, **options)

    owned = OwnedDataStoreSecurity()
    factories = dict(
        files=HostedDataStoreFactory(make("files", max_item_size=FILES_MAX), SECRET, owned),
        big=HostedDataStoreFactory(make("big"), SECRET, owned),
        images=HostedDataStoreFactory(
            make("images", max_item_size=FILES_MAX, permitted_content_types=("image/*",)), SECRET, owned
        ),
        vault=HostedDataStoreFactory(make("vault"), SECRET, INTERNAL_ONLY),
    )
    app = RecordErrors(Starlette(routes=DataStoreRoutes(factories.values(), authorizer=AUTHORIZER).create_routes()))
    with serve(app) as url:
        with httpx.Client(base_url=url, timeout=30, event_hooks={"response": [_check_nosniff]}) as client:
            yield Site(request.param, url, client, root, app=app, **factories)


@pytest.fixture(autouse=True)
def server_errors_on_failure(request):
    yield
    site = request.node.funcargs.get("site")
    if site is not None and site.app.errors and has_failed(request.node):
        print("--- exceptions raised in the server ---")
        for error in site.app.errors:
            print("".join(traceback.format_exception(error)))


def new_key(owner: str = "alice", suffix: str = ".txt") -> str:
    return f"{owner}/{uuid.uuid4().hex[:12]}{suffix}"


def post_parts(site: Site, store_name: str, parts, close: bool = True) -> httpx.Response:
    body, content_type = encode_multipart(parts, close)
    return site.client.post(f"/data/{store_name}", content=body, headers={"Content-Type": content_type})


def assert_error(response: httpx.Response, status: int, code: str, detail: Optional[str] = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error_code", "error_msg"}
    assert body["error_code"] == code, body
    if detail is not None:
        assert detail in body["error_msg"], body
    return body


def crafted_form(factory: HostedDataStoreFactory, key: str, conditions, fields, expire_at=None, secret=SECRET):
    """A form signed with the factory's secret over any policy: what only the server could make."""
    expire_at = expire_at or datetime.now(timezone.utc) + timedelta(minutes=5)
    policy = encode_policy(build_policy(expire_at, conditions))
    return [*fields, (POLICY_FIELD, policy), (SIGNATURE_FIELD, sign(secret, policy))]


def standard_conditions(factory, key, content_type="text/plain"):
    return [{"bucket": factory.name}, {"key": key}, {"Content-Type": content_type}]


# region: uploads that work


def test_upload_with_httpx_multipart(site):
    key = new_key()
    form = site.files.get_upload_form(key, ALICE)
    assert form.method == "POST" and form.file_param == "file"
    assert form.url == "/data/files"
    assert [f.name for f in form.fields] == ["key", "Content-Type", POLICY_FIELD, SIGNATURE_FIELD]
    content = os.urandom(200 * 1024)
    # httpx sends data fields first and files last, as the form requires
    response = site.client.post(form.url, data=form.fields_dict(), files={"file": ("a.txt", content, "text/plain")})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["key"] == key
    assert body["size"] == len(content)
    assert body["content_type"] == "text/plain"
    assert body["etag"] == hashlib.sha256(content).hexdigest()
    updated_at = datetime.fromisoformat(body["updated_at"])
    assert updated_at.tzinfo is not None and abs(datetime.now(timezone.utc) - updated_at) < timedelta(minutes=1)
    assert response.headers["etag"] == f'"{body["etag"]}"'
    assert response.headers["location"] == f"/data/files/{key}"
    store = site.files.get_store()
    item = store.read(key)
    assert item.size == len(content) and item.etag == body["etag"]
    with item.get_data_reader() as reader:
        assert reader.read() == content
    assert debris(store) == []


def test_upload_replaces_previous_content_without_orphans(site):
    key = new_key()
    store = site.files.get_store()
    for content in (os.urandom(300 * 1024), b"second, shorter"):
        form = site.files.get_upload_form(key, ALICE)
        response = site.client.post(form.url, data=form.fields_dict(), files={"file": ("a", content)})
        assert response.status_code == 201, response.text
        with store.read(key).get_data_reader() as reader:
            assert reader.read() == content
    assert debris(store) == []


def test_upload_with_chunked_transfer_encoding(site):
    """No Content-Length: the body streams in; the limits hold all the same."""
    for size, status in ((FILES_MAX, 201), (FILES_MAX + 1, 413)):
        key = new_key()
        body, content_type = encode_multipart(_form(site, key) + [file_part(b"z" * size)])

        def pieces(body=body):
            for start in range(0, len(body), 100_000):
                yield body[start : start + 100_000]

        response = site.client.post("/data/files", content=pieces(), headers={"Content-Type": content_type})
        assert response.request.headers.get("transfer-encoding") == "chunked"
        assert response.status_code == status, response.text
        assert (site.files.get_store().read(key) is not None) is (status == 201)
    assert debris(site.files.get_store()) == []


def test_upload_empty_file(site):
    key = new_key()
    form = site.files.get_upload_form(key, ALICE)
    response = site.client.post(form.url, data=form.fields_dict(), files={"file": ("a", b"")})
    assert response.status_code == 201, response.text
    assert response.json()["size"] == 0
    assert response.json()["etag"] == hashlib.sha256(b"").hexdigest()
    assert site.files.get_store().read(key).size == 0


def test_upload_with_curl(site, tmp_path):
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    key = new_key(suffix=" with space ü.png")
    form = site.images.get_upload_form(key, ALICE)
    assert form.fields_dict()["Content-Type"] == "image/png"  # guessed from the key
    path = tmp_path / "upload.png"
    content = b"\x89PNG\r\n\x1a\n" + os.urandom(100 * 1024)
    path.write_bytes(content)
    args = [curl, "-sS", "--max-time", "30", "-w", "\n%{http_code}"]
    for field in form.fields:
        args += ["--form-string", f"{field.name}={field.value}"]
    args += ["-F", f"file=@{path};type=image/png", site.url + form.url]
    result = subprocess.run(args, capture_output=True, timeout=60, check=True)
    body, status = result.stdout.decode().rsplit("\n", 1)
    assert status == "201", body
    assert json.loads(body)["key"] == key
    with site.images.get_store().read(key).get_data_reader() as reader:
        assert reader.read() == content


def test_who_gets_upload_forms(site):
    key = new_key()
    assert site.files.get_upload_form(key, ALICE) is not None
    assert site.files.get_upload_form(key, ADMIN) is not None
    assert site.files.get_upload_form(key, BOB) is None
    assert site.files.get_upload_form(key, None) is None
    assert site.vault.get_upload_form(key, ALICE) is None
    assert site.vault.get_upload_form(key, ADMIN) is None  # INTERNAL_ONLY: nobody
    # ownership is by exact, case-sensitive prefix "alice/"
    for other in ("Alice/x.txt", "ALICE/x.txt", "alice2/x.txt", "alicex.txt", "bob/alice/x.txt"):
        assert site.files.get_upload_form(other, ALICE) is None, other
    assert site.files.get_upload_form("alice/deep/er/x.txt", ALICE) is not None
    with pytest.raises(InvalidKeyError):
        site.files.get_upload_form("alice/../bob/x", ALICE)
    with pytest.raises(ContentTypeNotPermittedError):
        site.images.get_upload_form(new_key(suffix=".png"), ALICE, content_type="text/html")


@pytest.mark.parametrize("status", ["200", "204"])
def test_success_action_status_in_the_policy(site, status):
    key = new_key()
    fields = [("key", key), ("Content-Type", "text/plain"), ("success_action_status", status)]
    conditions = standard_conditions(site.files, key) + [{"success_action_status": status}]
    response = post_parts(site, "files", crafted_form(site.files, key, conditions, fields) + [file_part(b"hi")])
    assert response.status_code == int(status), response.text
    assert response.content == b""
    assert response.headers["etag"] == f'"{hashlib.sha256(b"hi").hexdigest()}"'
    assert site.files.get_store().read(key).size == 2


def test_success_action_redirect_in_the_policy(site):
    key = new_key()
    redirect = "https://app.example/uploaded?from=test"
    fields = [("key", key), ("Content-Type", "text/plain"), ("success_action_redirect", redirect)]
    conditions = standard_conditions(site.files, key) + [["starts-with", "$success_action_redirect", "https://app."]]
    response = post_parts(site, "files", crafted_form(site.files, key, conditions, fields) + [file_part(b"hi")])
    assert response.status_code == 303, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == "https://app.example/uploaded"
    query = parse_qs(location.query)
    assert query == {
        "from": ["test"],
        "bucket": ["files"],
        "key": [key],
        "etag": [f'"{hashlib.sha256(b"hi").hexdigest()}"'],
    }
    assert site.files.get_store().read(key).size == 2


def test_fields_after_the_file_are_ignored(site):
    key = new_key()
    other = new_key("bob")
    site.files.get_store().write_bytes(other, ORIGINAL)
    form = site.files.get_upload_form(key, ALICE)
    parts = form_fields(form) + [
        file_part(b"content"),
        ("key", other),
        ("success_action_status", "204"),
        ("Content-Type", "text/html"),
        ("unknown", "x"),
    ]
    response = post_parts(site, "files", parts)
    assert response.status_code == 201, response.text
    assert response.json()["key"] == key
    assert response.json()["content_type"] == "text/plain"
    with site.files.get_store().read(other).get_data_reader() as reader:
        assert reader.read() == ORIGINAL


def test_form_can_be_reused_until_it_expires_then_is_refused(site):
    key = new_key()
    store = site.files.get_store()
    used = site.files.get_upload_form(key, ALICE, expire_in=timedelta(seconds=3))
    unused = site.files.get_upload_form(new_key(), ALICE, expire_in=timedelta(seconds=1))
    response = site.client.post(used.url, data=used.fields_dict(), files={"file": ("a", ORIGINAL)})
    assert response.status_code == 201, response.text
    wait = max(used.expire_at, unused.expire_at) - datetime.now(timezone.utc) + timedelta(seconds=0.2)
    assert wait < timedelta(seconds=3.5)
    time.sleep(max(wait.total_seconds(), 0))
    before = storage_state(store)
    for form in (used, unused):
        response = site.client.post(form.url, data=form.fields_dict(), files={"file": ("a", b"too late")})
        assert_error(response, 403, "upload_rejected", "policy_expired")
    assert storage_state(store) == before
    with store.read(key).get_data_reader() as reader:
        assert reader.read() == ORIGINAL
    assert debris(store) == []


# endregion

# region: hostile uploads


@dataclass
class Attack:
    parts: object  # the multipart parts, or a callable(site) -> httpx.Response for raw requests
    status: int
    code: str
    detail: Optional[str] = None
    store: str = "files"  # where the attacked key lives
    target: Optional[str] = None  # the attacked key (default: the form's key)
    post_to: Optional[str] = None  # the store posted to (default: store)


def _form(site, key, factory="files", **kwargs):
    return form_fields(site.factory(factory).get_upload_form(key, ALICE, **kwargs))


def _policy_of(fields) -> dict:
    return decode_policy(dict(fields)[POLICY_FIELD])


def tampered_content_type(site, key):
    return Attack(
        replace_field(_form(site, key), "Content-Type", "text/html") + [file_part(b"<script>")],
        403,
        "upload_rejected",
        "field_mismatch:content-type",
    )


def tampered_policy(site, key):
    fields = _form(site, key)
    policy = _policy_of(fields)
    policy["conditions"] = [
        [c[0], 0, 10**12] if isinstance(c, list) and c[0] == "content-length-range" else c for c in policy["conditions"]
    ]
    assert ["content-length-range", 0, 10**12] in policy["conditions"]
    fields = replace_field(fields, POLICY_FIELD, encode_policy(policy))
    return Attack(fields + [file_part(b"x" * (FILES_MAX + 1))], 403, "upload_rejected", "signature_does_not_match")


def tampered_policy_key(site, key):
    fields = _form(site, key)
    policy = _policy_of(fields)
    policy["conditions"] = [["starts-with", "$key", ""] if c == {"key": key} else c for c in policy["conditions"]]
    fields = replace_field(replace_field(fields, POLICY_FIELD, encode_policy(policy)), "key", "bob/x.txt")
    return Attack(fields + [file_part(b"x")], 403, "upload_rejected", "signature_does_not_match", target="bob/x.txt")


def forged_signature_other_secret(site, key):
    fields = _form(site, key)
    forged = sign(b"not-the-secret-but-long-enough-0123456789", dict(fields)[POLICY_FIELD])
    return Attack(
        replace_field(fields, SIGNATURE_FIELD, forged) + [file_part(b"x")],
        403,
        "upload_rejected",
        "signature_does_not_match",
    )


def forged_signature_garbage(site, key):
    return Attack(
        replace_field(_form(site, key), SIGNATURE_FIELD, "0" * 64) + [file_part(b"x")],
        403,
        "upload_rejected",
        "signature_does_not_match",
    )


def missing_signature(site, key):
    return Attack(
        replace_field(_form(site, key), SIGNATURE_FIELD, None) + [file_part(b"x")],
        403,
        "upload_rejected",
        "missing_policy_or_signature",
    )


def missing_policy(site, key):
    return Attack(
        replace_field(_form(site, key), POLICY_FIELD, None) + [file_part(b"x")],
        403,
        "upload_rejected",
        "missing_policy_or_signature",
    )


def signed_garbage_policy(site, key):
    garbage = base64.b64encode(b"this is not json").decode()
    fields = replace_field(_form(site, key), POLICY_FIELD, garbage)
    fields = replace_field(fields, SIGNATURE_FIELD, sign(SECRET, garbage))
    return Attack(fields + [file_part(b"x")], 403, "upload_rejected", "malformed_policy")


def expired_crafted(site, key):
    past = datetime.now(timezone.utc) - timedelta(seconds=5)
    fields = crafted_form(
        site.files,
        key,
        standard_conditions(site.files, key),
        [("key", key), ("Content-Type", "text/plain")],
        expire_at=past,
    )
    return Attack(fields + [file_part(b"x")], 403, "upload_rejected", "policy_expired")


def over_size(site, key):
    return Attack(_form(site, key) + [file_part(os.urandom(2 * MIB))], 413, "item_too_large")


def over_size_by_one_byte(site, key):
    return Attack(_form(site, key) + [file_part(b"y" * (FILES_MAX + 1))], 413, "item_too_large")


def over_size_with_a_generous_signed_policy(site, key):
    """Even a policy signed by the server cannot lift the store's own limit."""
    conditions = standard_conditions(site.files, key) + [["content-length-range", 0, 10**12]]
    fields = crafted_form(site.files, key, conditions, [("key", key), ("Content-Type", "text/plain")])
    return Attack(fields + [file_part(os.urandom(2 * MIB))], 413, "item_too_large")


def under_min_size(site, key):
    conditions = standard_conditions(site.files, key) + [["content-length-range", 100, 1000]]
    fields = crafted_form(site.files, key, conditions, [("key", key), ("Content-Type", "text/plain")])
    return Attack(fields + [file_part(b"tiny")], 403, "upload_rejected", "content_length_out_of_range")


def content_type_not_permitted(site, key):
    return _any_content_type_form(site, key, "text/html", "content_type_not_permitted", part_type="text/html")


def _any_content_type_form(site, key, content_type, code="malformed_content_type", part_type="image/png"):
    """A form signed by the server that lets the poster choose any content type."""
    key = key.replace(".txt", ".png")
    conditions = [{"bucket": "images"}, {"key": key}, ["starts-with", "$Content-Type", ""]]
    fields = crafted_form(site.images, key, conditions, [("key", key), ("Content-Type", content_type)])
    return Attack(
        fields + [file_part(b"<script>alert(1)</script>", "a.png", part_type)],
        415,
        code,
        store="images",
        target=key,
    )


def list_of_types_starting_with_an_image(site, key):
    """Passed an image/* allowlist, was served inline and ran script in Chromium."""
    return _any_content_type_form(site, key, "image/png,text/html")


def two_types_separated_by_a_space(site, key):
    return _any_content_type_form(site, key, "image/png text/html")


def content_type_with_a_header_break(site, key):
    return _any_content_type_form(site, key, "image/png\r\nContent-Disposition: inline")


def content_type_with_a_bad_parameter(site, key):
    return _any_content_type_form(site, key, 'image/png; name="x')


def wildcard_content_type(site, key):
    return _any_content_type_form(site, key, "image/*")


def other_users_key(site, key):
    target = new_key("bob")
    return Attack(
        replace_field(_form(site, key), "key", target) + [file_part(b"x")],
        403,
        "upload_rejected",
        "field_mismatch:key",
        target=target,
    )


def dot_dot_key(site, key):
    target = new_key("bob")
    return Attack(
        replace_field(_form(site, key), "key", "alice/../" + target) + [file_part(b"x")],
        400,
        "invalid_key",
        "dot_segment",
        target=target,
    )


def dot_dot_key_with_a_signed_policy(site, key):
    """Keys are checked even when the policy would allow them."""
    escape = "../escaped.txt"
    conditions = [{"bucket": "files"}, ["starts-with", "$key", ""], {"Content-Type": "text/plain"}]
    fields = crafted_form(site.files, escape, conditions, [("key", escape), ("Content-Type", "text/plain")])
    return Attack(fields + [file_part(b"x")], 400, "invalid_key", "dot_segment")


def absolute_key(site, key):
    return Attack(
        replace_field(_form(site, key), "key", "/" + key) + [file_part(b"x")], 400, "invalid_key", "absolute_key"
    )


def absolute_key_with_a_signed_policy(site, key):
    conditions = [{"bucket": "files"}, ["starts-with", "$key", ""], {"Content-Type": "text/plain"}]
    fields = crafted_form(site.files, "/tmp/x", conditions, [("key", "/tmp/x"), ("Content-Type", "text/plain")])
    return Attack(fields + [file_part(b"x")], 400, "invalid_key", "absolute_key")


def reserved_key_with_a_signed_policy(site, key):
    reserved = ".persisty_data/tmp/x"
    conditions = [{"bucket": "files"}, ["starts-with", "$key", ""], {"Content-Type": "text/plain"}]
    fields = crafted_form(site.files, reserved, conditions, [("key", reserved), ("Content-Type", "text/plain")])
    return Attack(fields + [file_part(b"x")], 400, "invalid_key", "reserved_segment")


def missing_key(site, key):
    return Attack(
        replace_field(_form(site, key), "key", None) + [file_part(b"x")], 403, "upload_rejected", "missing_field:key"
    )


def key_after_the_file(site, key):
    fields = _form(site, key)
    return Attack(
        replace_field(fields, "key", None) + [file_part(b"x"), ("key", key)],
        403,
        "upload_rejected",
        "missing_field:key",
    )


def missing_file_part(site, key):
    return Attack(_form(site, key), 400, "malformed_upload", "no_file_part")


def file_part_under_another_name(site, key):
    return Attack(
        _form(site, key) + [("upload", ("a.txt", b"x", "text/plain"))], 400, "malformed_upload", "no_file_part"
    )


def not_multipart_json(site, key):
    fields = dict(_form(site, key))
    return Attack(
        lambda s: s.client.post("/data/files", json={**fields, "file": "eA=="}),
        400,
        "malformed_upload",
        "expected_multipart_form_data",
    )


def not_multipart_urlencoded(site, key):
    fields = dict(_form(site, key))
    return Attack(
        lambda s: s.client.post("/data/files", data={**fields, "file": "x"}),
        400,
        "malformed_upload",
        "expected_multipart_form_data",
    )


def multipart_without_boundary(site, key):
    body, _ = encode_multipart(_form(site, key) + [file_part(b"x")])
    return Attack(
        lambda s: s.client.post("/data/files", content=body, headers={"Content-Type": "multipart/form-data"}),
        400,
        "malformed_upload",
        "expected_multipart_form_data",
    )


def duplicate_field(site, key):
    fields = _form(site, key)
    return Attack(fields + [("key", key), file_part(b"x")], 400, "malformed_upload", "duplicate_field:key")


def duplicate_field_other_case(site, key):
    fields = _form(site, key)
    return Attack([("KEY", key)] + fields + [file_part(b"x")], 400, "malformed_upload", "duplicate_field:key")


def field_too_large(site, key):
    return Attack(
        _form(site, key) + [("x-ignore-pad", "p" * (17 * 1024)), file_part(b"x")],
        400,
        "malformed_upload",
        "field_larger_than",
    )


def too_many_fields(site, key):
    padding = [(f"x-ignore-{i}", "p") for i in range(40)]
    return Attack(_form(site, key) + padding + [file_part(b"x")], 400, "malformed_upload", "fields")


def field_not_utf8(site, key):
    return Attack(
        _form(site, key) + [("x-ignore-bin", b"\xff\xfe"), file_part(b"x")], 400, "malformed_upload", "field_not_utf8"
    )


def part_without_a_name(site, key):
    raw = b'Content-Disposition: form-data; filename="x"\r\n\r\nabc'
    return Attack(_form(site, key) + [raw, file_part(b"x")], 400, "malformed_upload", "part_without_a_name")


def part_headers_too_large(site, key):
    raw = b'Content-Disposition: form-data; name="x-ignore-h"\r\nX-Pad: ' + b"h" * (300 * 1024) + b"\r\n\r\nv"
    return Attack(_form(site, key) + [raw, file_part(b"x")], 400, "malformed_upload")


def malformed_part_header(site, key):
    raw = b"Content-Disposition: form-data; name=x-ignore-a\r\nBad Header: x\r\n\r\nv"
    return Attack(_form(site, key) + [raw, file_part(b"x")], 400, "malformed_upload")


def body_not_starting_with_a_boundary(site, key):
    body, content_type = encode_multipart(_form(site, key) + [file_part(b"x")])
    return Attack(
        lambda s: s.client.post("/data/files", content=b"garbage" + body, headers={"Content-Type": content_type}),
        400,
        "malformed_upload",
    )


def success_action_status_not_in_policy(site, key):
    return Attack(
        _form(site, key) + [("success_action_status", "204"), file_part(b"x")],
        403,
        "upload_rejected",
        "field_not_in_policy:success_action_status",
    )


def success_action_redirect_not_in_policy(site, key):
    return Attack(
        _form(site, key) + [("success_action_redirect", "https://evil.example/"), file_part(b"x")],
        403,
        "upload_rejected",
        "field_not_in_policy:success_action_redirect",
    )


def unknown_field(site, key):
    return Attack(
        _form(site, key) + [("x-amz-meta-owner", "bob"), file_part(b"x")],
        403,
        "upload_rejected",
        "field_not_in_policy:x-amz-meta-owner",
    )


def bucket_field_for_another_store(site, key):
    return Attack(
        _form(site, key) + [("bucket", "vault"), file_part(b"x")], 403, "upload_rejected", "field_mismatch:bucket"
    )


def form_posted_to_another_store(site, key):
    return Attack(_form(site, key) + [file_part(b"x")], 403, "upload_rejected", "field_mismatch:bucket", store="vault")


def form_posted_to_another_store_claiming_its_bucket(site, key):
    """
    A form for 'files' posted to 'vault' (same secret) with a 'bucket' field naming 'files':
    the bucket must come from the URL, never from a posted field.
    """
    return Attack(
        _form(site, key) + [("bucket", "files"), file_part(b"x")],
        403,
        "upload_rejected",
        "field_mismatch:bucket",
        store="vault",
    )


def unknown_store(site, key):
    return Attack(_form(site, key) + [file_part(b"x")], 404, "store_not_found", post_to="no_such_store")


def body_ends_inside_the_file(site, key):
    return Attack(lambda s: _post_truncated(s, key), 400, "malformed_upload", "body_ends_inside_the_file_part")


def _post_truncated(site, key):
    body, content_type = encode_multipart(_form(site, key) + [file_part(os.urandom(FILES_MAX - 1000))], close=False)
    body = body[:-2]  # not even the CRLF that would precede a boundary
    return site.client.post("/data/files", content=body, headers={"Content-Type": content_type})


def too_much_data_after_the_file(site, key):
    return Attack(
        _form(site, key) + [file_part(b"x"), ("x-ignore-pad", "p" * (70 * 1024))],
        400,
        "malformed_upload",
        "too_much_data_after_the_file",
    )


ATTACKS: Dict[str, Callable[[Site, str], Attack]] = {
    f.__name__: f
    for f in (
        tampered_content_type,
        tampered_policy,
        tampered_policy_key,
        forged_signature_other_secret,
        forged_signature_garbage,
        missing_signature,
        missing_policy,
        signed_garbage_policy,
        expired_crafted,
        over_size,
        over_size_by_one_byte,
        over_size_with_a_generous_signed_policy,
        under_min_size,
        content_type_not_permitted,
        list_of_types_starting_with_an_image,
        two_types_separated_by_a_space,
        content_type_with_a_header_break,
        content_type_with_a_bad_parameter,
        wildcard_content_type,
        other_users_key,
        dot_dot_key,
        dot_dot_key_with_a_signed_policy,
        absolute_key,
        absolute_key_with_a_signed_policy,
        reserved_key_with_a_signed_policy,
        missing_key,
        key_after_the_file,
        missing_file_part,
        file_part_under_another_name,
        not_multipart_json,
        not_multipart_urlencoded,
        multipart_without_boundary,
        duplicate_field,
        duplicate_field_other_case,
        field_too_large,
        too_many_fields,
        field_not_utf8,
        part_without_a_name,
        part_headers_too_large,
        malformed_part_header,
        body_not_starting_with_a_boundary,
        success_action_status_not_in_policy,
        success_action_redirect_not_in_policy,
        unknown_field,
        bucket_field_for_another_store,
        form_posted_to_another_store,
        form_posted_to_another_store_claiming_its_bucket,
        unknown_store,
        body_ends_inside_the_file,
        too_much_data_after_the_file,
    )
}


@pytest.mark.parametrize("attack_name", list(ATTACKS))
def test_hostile_upload_stores_nothing(site, attack_name):
    key = new_key()
    attack = ATTACKS[attack_name](site, key)
    target_store = site.factory(attack.store).get_store()
    target = attack.target or key
    original = target_store.write_bytes(target, ORIGINAL, "image/png" if attack.store == "images" else None)
    files_store = site.files.get_store()
    before = {name: storage_state(site.factory(name).get_store()) for name in ("files", "images", "vault")}

    errors_before = len(site.app.errors)
    if callable(attack.parts):
        response = attack.parts(site)
    else:
        response = post_parts(site, attack.post_to or attack.store, attack.parts)

    assert_error(response, attack.status, attack.code, attack.detail)
    assert site.app.errors[errors_before:] == []  # refused, not crashed
    item = target_store.read(target)
    assert (item.etag, item.size, item.content_type) == (original.etag, original.size, original.content_type)
    with item.get_data_reader() as reader:
        assert reader.read() == ORIGINAL
    after = {name: storage_state(site.factory(name).get_store()) for name in ("files", "images", "vault")}
    assert after == before
    assert debris(files_store) == []
    assert not os.path.exists(os.path.join(site.root, "escaped.txt"))


def test_client_disconnect_mid_upload_stores_nothing(site):
    """The client goes away halfway through the file: the write is aborted and cleaned up."""
    key = new_key()
    store = site.files.get_store()
    store.write_bytes(key, ORIGINAL)
    before = storage_state(store)
    errors_before = len(site.app.errors)
    body, content_type = encode_multipart(_form(site, key) + [file_part(os.urandom(FILES_MAX - 1000))])
    sent = len(body) - 100 * 1024  # past the first 1 MiB handed to the writer, short of the end
    host, port = urlsplit(site.url).hostname, urlsplit(site.url).port
    with socket.create_connection((host, port), timeout=10) as sock:
        head = (
            f"POST /data/files HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        sock.sendall(head + body[:sent])
        deadline = time.monotonic() + 10
        while not debris(store) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert debris(store), "the server should have stored part of the file by now"
    deadline = time.monotonic() + 10
    while (storage_state(store) != before or debris(store)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert storage_state(store) == before
    assert debris(store) == []
    with store.read(key).get_data_reader() as reader:
        assert reader.read() == ORIGINAL
    # the route lets starlette's ClientDisconnect through (uvicorn logs it); nothing else
    assert {type(e).__name__ for e in site.app.errors[errors_before:]} <= {"ClientDisconnect"}


# endregion

# region: downloads

CONTENT = bytes(range(256)) * 4 + b"tail"  # 1028 bytes
SIZE = len(CONTENT)


@pytest.fixture(scope="module")
def stored(site):
    """An item of alice's, with its signed URL."""
    key = "alice/downloads/data.bin"
    item = site.files.get_store().write_bytes(key, CONTENT, "application/octet-stream")
    url = site.files.get_download_url(key, ALICE)
    return key, item, url


def test_signed_url_shape(site, stored):
    key, item, _ = stored
    url = site.files.get_download_url(key, ALICE)
    parts = urlsplit(url)
    assert parts.path == f"/data/files/{key}"
    query = parse_qs(parts.query)
    assert set(query) == {"expires", "signature"}
    expires = int(query["expires"][0])
    assert 3500 < expires - time.time() <= 3600
    assert query["signature"][0] == sign(SECRET, download_message("files", key, expires))
    assert site.files.get_download_url(key, BOB) is None  # bob may not read alice's items
    assert site.files.get_download_url(key, None) is None
    assert site.files.get_download_url(key, ADMIN) is not None
    assert site.files.get_download_url("alice/missing", ALICE) is None


def test_full_get(site, stored):
    key, item, url = stored
    response = site.client.get(url)
    assert response.status_code == 200
    assert response.content == CONTENT
    headers = response.headers
    assert headers["content-length"] == str(SIZE)
    assert headers["content-type"] == "application/octet-stream"
    assert headers["etag"] == f'"{item.etag}"'
    assert parsedate_to_datetime(headers["last-modified"]) == item.updated_at.replace(microsecond=0)
    assert headers["accept-ranges"] == "bytes"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert headers["content-disposition"] == "attachment; filename*=UTF-8''data.bin"
    assert "content-range" not in headers


def _comparable(headers: httpx.Headers) -> dict:
    return {k: v for k, v in headers.items() if k not in ("date", "server")}


def test_head_has_the_same_headers_and_no_body(site, stored):
    key, item, url = stored
    get = site.client.get(url)
    head = site.client.head(url)
    assert head.status_code == 200
    assert head.content == b""
    assert _comparable(head.headers) == _comparable(get.headers)
    ranged_get = site.client.get(url, headers={"Range": "bytes=1-2"})
    ranged_head = site.client.head(url, headers={"Range": "bytes=1-2"})
    assert ranged_head.status_code == 206 and ranged_head.content == b""
    assert _comparable(ranged_head.headers) == _comparable(ranged_get.headers)


@pytest.mark.parametrize(
    "header, start, end",
    [
        ("bytes=10-19", 10, 20),
        ("bytes=0-0", 0, 1),
        ("bytes=-5", SIZE - 5, SIZE),
        ("bytes=5-", 5, SIZE),
        ("bytes=1000-99999", 1000, SIZE),  # the end is clipped to the size
        ("bytes=-99999", 0, SIZE),  # a suffix longer than the content: all of it
        ("bytes=1027-1027", SIZE - 1, SIZE),
        ("bytes = 3 - 4", 3, 5),
    ],
)
def test_single_range(site, stored, header, start, end):
    key, item, url = stored
    response = site.client.get(url, headers={"Range": header})
    assert response.status_code == 206, response.text
    assert response.content == CONTENT[start:end]
    assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{SIZE}"
    assert response.headers["content-length"] == str(end - start)
    assert response.headers["etag"] == f'"{item.etag}"'


@pytest.mark.parametrize("header", ["bytes=1028-", "bytes=5000-6000", "bytes=-0"])
def test_unsatisfiable_range(site, stored, header):
    key, item, url = stored
    response = site.client.get(url, headers={"Range": header})
    assert_error(response, 416, "range_not_satisfiable")
    assert response.headers["content-range"] == f"bytes */{SIZE}"


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "bytes=9-3", "items=0-1", "bytes=abc", "bytes=-"])
def test_ranges_served_whole(site, stored, header):
    """Multiple ranges, invalid ranges and other units: the whole content, 200."""
    key, item, url = stored
    response = site.client.get(url, headers={"Range": header})
    assert response.status_code == 200
    assert response.content == CONTENT
    assert "content-range" not in response.headers


def test_if_range(site, stored):
    key, item, url = stored
    matching = site.client.get(url, headers={"Range": "bytes=0-3", "If-Range": f'"{item.etag}"'})
    assert matching.status_code == 206 and matching.content == CONTENT[:4]
    stale = site.client.get(url, headers={"Range": "bytes=0-3", "If-Range": '"stale"'})
    assert stale.status_code == 200 and stale.content == CONTENT


@pytest.mark.parametrize("value", ["{etag}", "*", "W/{etag}", '"other", {etag}'])
def test_if_none_match_gives_304(site, stored, value):
    key, item, url = stored
    etag = f'"{item.etag}"'
    response = site.client.get(url, headers={"If-None-Match": value.format(etag=etag)})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert site.client.head(url, headers={"If-None-Match": etag}).status_code == 304


def test_if_none_match_other_etag_gives_200(site, stored):
    key, item, url = stored
    response = site.client.get(url, headers={"If-None-Match": '"something-else"'})
    assert response.status_code == 200 and response.content == CONTENT


def test_if_modified_since(site, stored):
    key, item, url = stored
    last_modified = site.client.get(url).headers["last-modified"]
    assert site.client.get(url, headers={"If-Modified-Since": last_modified}).status_code == 304
    later = format_datetime(parsedate_to_datetime(last_modified) + timedelta(days=1), usegmt=True)
    assert site.client.get(url, headers={"If-Modified-Since": later}).status_code == 304
    earlier = format_datetime(parsedate_to_datetime(last_modified) - timedelta(seconds=1), usegmt=True)
    response = site.client.get(url, headers={"If-Modified-Since": earlier})
    assert response.status_code == 200 and response.content == CONTENT
    assert site.client.get(url, headers={"If-Modified-Since": "not a date"}).status_code == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.1.3)
    both = site.client.get(url, headers={"If-None-Match": '"other"', "If-Modified-Since": last_modified})
    assert both.status_code == 200


# Served as given (in canonical form) and decided by download_headers: inline only if passive.
ATTACHMENT = [
    "text/html",
    "text/html; charset=utf-8",
    "application/xhtml+xml",
    "image/svg+xml",
    "application/javascript",
    "text/javascript",
    "text/xml",
    "application/xml",
    "application/rss+xml",
    "application/pdf",
    "text/plain",  # no charset: a browser would guess one
    "text/plain; charset=utf-7",
    "application/json",
    "application/octet-stream",
    "image/x-icon",
]
INLINE = ["image/png", "image/jpeg; q=1", "text/plain; charset=ISO-8859-1", "audio/ogg", "video/mp4"]


@pytest.mark.parametrize("content_type", ATTACHMENT + INLINE)
def test_content_type_as_stored_and_only_passive_content_inline(site, content_type):
    key = new_key(suffix=" ü.data")
    site.files.get_store().write_bytes(key, b"<svg onload=alert(1)>", content_type)
    url = site.files.get_download_url(key, ALICE)
    for response in (site.client.get(url), site.client.head(url), site.client.get(url, headers={"Range": "bytes=0-1"})):
        assert response.status_code in (200, 206)
        assert response.headers["content-type"] == content_type
        assert response.headers["x-content-type-options"] == "nosniff"
        csp = MEDIA_DOCUMENT_CSP if content_type.startswith(("audio/", "video/")) else "default-src 'none'; sandbox"
        assert response.headers["content-security-policy"] == csp
        disposition = "inline" if content_type in INLINE else "attachment"
        filename = quote(key.rsplit("/", 1)[-1], safe="")
        assert response.headers["content-disposition"] == f"{disposition}; filename*=UTF-8''{filename}"


def test_active_content_uploaded_through_a_form_downloads_as_attachment(site):
    key = new_key(suffix=".html")
    form = site.files.get_upload_form(key, ALICE)
    assert form.fields_dict()["Content-Type"] == "text/html"
    response = site.client.post(form.url, data=form.fields_dict(), files={"file": ("x.html", b"<script>1</script>")})
    assert response.status_code == 201, response.text
    download = site.client.get(site.files.get_download_url(key, ALICE))
    assert download.headers["content-type"] == "text/html"
    assert download.headers["content-disposition"].startswith("attachment;")


def test_twenty_mib_item_streams(site):
    store = site.big.get_store()
    key = new_key(suffix=".bin")
    expected = hashlib.sha256()
    with store.get_data_writer(key, "application/octet-stream") as writer:
        for i in range(20):
            block = hashlib.sha256(str(i).encode()).digest() * (MIB // 32)
            expected.update(block)
            writer.write(block)
    url = site.big.get_download_url(key, ALICE)
    received = hashlib.sha256()
    size = 0
    with site.client.stream("GET", url) as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(20 * MIB)
        for chunk in response.iter_bytes():
            received.update(chunk)
            size += len(chunk)
    assert size == 20 * MIB
    assert received.hexdigest() == expected.hexdigest()
    middle = site.client.get(url, headers={"Range": f"bytes={10 * MIB - 3}-{10 * MIB + 2}"})
    assert middle.status_code == 206
    block9 = hashlib.sha256(b"9").digest() * (MIB // 32)
    block10 = hashlib.sha256(b"10").digest() * (MIB // 32)
    assert middle.content == block9[-3:] + block10[:3]


def test_download_with_bearer_token(site, stored):
    key, item, url = stored
    path = f"/data/files/{key}"
    assert site.client.get(path, headers=bearer(ALICE)).content == CONTENT
    assert site.client.get(path, headers=bearer(ADMIN)).content == CONTENT
    assert_error(site.client.get(path, headers=bearer(BOB)), 404, "not_found")
    assert_error(site.client.get(path), 401, "unauthorized")
    assert_error(site.client.get(path, headers=bearer(EXPIRED_ALICE)), 401, "invalid_token")
    assert_error(site.client.get(path, headers={"Authorization": "Bearer garbage"}), 401, "invalid_token")
    assert_error(
        site.client.get(path, headers={"Authorization": "Basic YWxpY2U6eA=="}), 401, "unsupported_authorization"
    )
    # vault is INTERNAL_ONLY: no caller may read it, not even root
    site.vault.get_store().write_bytes(key, CONTENT)
    assert_error(site.client.get(f"/data/vault/{key}", headers=bearer(ADMIN)), 403, "forbidden")
    assert_error(site.client.get(f"/data/vault/{key}"), 401, "unauthorized")


def test_bad_signed_urls(site, stored):
    key, item, url = stored
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    expires, signature = int(query["expires"]), query["signature"]
    path = parts.path

    def get(p, **params):
        return site.client.get(p, params=params)

    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    assert_error(get(path, expires=expires, signature=flipped), 403, "bad_or_expired_signature")
    assert_error(get(path, expires=expires + 1, signature=signature), 403, "bad_or_expired_signature")
    assert_error(get(path, expires=expires), 403, "bad_or_expired_signature")
    assert_error(get(path, signature=signature), 403, "bad_or_expired_signature")
    assert_error(get(path, expires="soon", signature=signature), 403, "bad_or_expired_signature")
    # a signature for one key does not open another, nor the same key in another store
    other = new_key()
    site.files.get_store().write_bytes(other, b"other")
    assert_error(get(f"/data/files/{other}", expires=expires, signature=signature), 403, "bad_or_expired_signature")
    site.vault.get_store().write_bytes(key, b"vault")
    assert_error(get(f"/data/vault/{key}", expires=expires, signature=signature), 403, "bad_or_expired_signature")
    # expired, though signed with the right secret
    past = int(time.time()) - 5
    expired = sign(SECRET, download_message("files", key, past))
    assert_error(get(path, expires=past, signature=expired), 403, "bad_or_expired_signature")
    # a bad signature is not rescued by a good token
    response = site.client.get(path, params={"expires": expires, "signature": flipped}, headers=bearer(ALICE))
    assert_error(response, 403, "bad_or_expired_signature")


def test_empty_item(site):
    key = new_key()
    site.files.get_store().write_bytes(key, b"")
    url = site.files.get_download_url(key, ALICE)
    response = site.client.get(url)
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-length"] == "0"
    unsatisfiable = site.client.get(url, headers={"Range": "bytes=0-"})
    assert_error(unsatisfiable, 416, "range_not_satisfiable")
    assert unsatisfiable.headers["content-range"] == "bytes */0"


def test_signed_url_of_a_deleted_item_gives_404(site):
    key = new_key()
    store = site.files.get_store()
    store.write_bytes(key, b"soon gone")
    url = site.files.get_download_url(key, ALICE)
    assert site.client.get(url).status_code == 200
    assert store.delete(key) is True
    assert_error(site.client.get(url), 404, "not_found")


def test_unusual_keys_round_trip(site):
    key = "alice/dir with space/naïve ?#%&+=;,'\"名前.txt"
    form = site.files.get_upload_form(key, ALICE)
    response = site.client.post(form.url, data=form.fields_dict(), files={"file": ("a", b"unusual")})
    assert response.status_code == 201, response.text
    assert response.json()["key"] == key
    url = site.files.get_download_url(key, ALICE)
    assert "?" not in urlsplit(url).path and "#" not in url.split("?", 1)[0]
    assert site.client.get(url).content == b"unusual"
    assert site.client.get(response.headers["location"], headers=bearer(ALICE)).content == b"unusual"


INVALID_PATHS = ["/data/files/alice/%2E%2E/bob/x", "/data/files/alice//x", "/data/files/%2Fetc/passwd"]


@pytest.mark.parametrize("path", INVALID_PATHS)
def test_invalid_keys_in_download_paths(site, path):
    response = site.client.get(path, headers=bearer(ALICE))
    assert_error(response, 400, "invalid_key")


def test_unknown_store(site):
    assert_error(site.client.get("/data/no_such_store/alice/x", headers=bearer(ALICE)), 404, "store_not_found")
    head = site.client.head("/data/no_such_store/alice/x", headers=bearer(ALICE))
    assert head.status_code == 404 and head.content == b""


# endregion


@pytest.mark.parametrize(
    "disposition, name",
    [
        ('form-data; name="key"', "key"),
        ('form-data; name="file"; filename="a b.png"', "file"),
        ('Form-Data;name="x-amz-meta-note"', "x-amz-meta-note"),
        ('form-data; name="caf\u00e9"', "caf\u00e9"),
        # not the plain shape: python-multipart's parser decides
        ('form-data; name="a\\"b"', 'a"b'),
        ('form-data; filename="f.txt"; name="file"', "file"),
        ("form-data; name=token", "token"),
    ],
)
def test_part_names_from_content_disposition(disposition, name):
    from persisty_data.web.hosted_upload import _part_name

    assert _part_name(disposition) == name


def test_a_part_without_a_name_is_malformed():
    from persisty_data.errors import MalformedUploadError
    from persisty_data.web.hosted_upload import _part_name

    with pytest.raises(MalformedUploadError):
        _part_name('form-data; filename="f.txt"')


def _corrupt(site: Site, store, key: str) -> None:
    if site.backend == "directory":
        corrupt_file(store._checked_path(key))
    else:
        ChunkSqliteBackend().corrupt(store, key)


def test_download_of_a_corrupt_small_item_is_a_server_error(site):
    store = site.files.store
    key = new_key()
    store.write_bytes(key, b"intact bytes\n" * 100, "text/plain")
    _corrupt(site, store, key)
    response = site.client.get(site.files.get_download_url(key, ALICE))
    assert_error(response, 500, "content_corrupted")


def test_download_of_a_corrupt_large_item_is_cut_short(site):
    # The status and length went out before the last byte was hashed: the client gets
    # fewer bytes than Content-Length, never the whole damaged content as if it were fine.
    store = site.big.store
    key = new_key(suffix=".bin")
    data = os.urandom(3 * MIB + 5)
    store.write_bytes(key, data)
    _corrupt(site, store, key)
    received = bytearray()
    with pytest.raises(httpx.RemoteProtocolError):
        with site.client.stream("GET", site.big.get_download_url(key, ALICE)) as response:
            assert response.status_code == 200 and response.headers["content-length"] == str(len(data))
            for chunk in response.iter_bytes():
                received += chunk
    assert len(received) < len(data)
