"""
S3DataStoreFactory against moto's server over real HTTP (127.0.0.1), and against moto
in-process where no HTTP is involved: presigned POST forms posted by httpx and curl,
presigned GET URLs, the policies S3 enforces, authorization, one client for S3 and hosted
forms, and a HostedDataStoreFactory proxying to an S3DataStore.

moto checks neither POST policies nor SigV4 signatures and expiry: what S3 would refuse
is proven with validate_post_policy on the very policy boto3 signed, and the URLs by
their SigV4 shape.
"""

import hashlib
import os
import shutil
import subprocess
import time
import traceback
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, Iterator, List, Optional, TypeVar
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from persisty.security.store_security import INTERNAL_ONLY
from starlette.applications import Starlette

from persisty_data.data_store_abc import DataStoreABC
from persisty_data.directory.directory_data_store import DirectoryDataStore
from persisty_data.errors import ContentTypeNotPermittedError, InvalidKeyError, MalformedContentTypeError
from persisty_data.factory.data_store_factory_abc import DataStoreFactoryABC
from persisty_data.factory.hosted_data_store_factory import HostedDataStoreFactory
from persisty_data.factory.owned_data_store_security import OwnedDataStoreSecurity
from persisty_data.post_policy import decode_policy, parse_expiration, validate_post_policy
from persisty_data.s3.s3_data_store import MIN_PART_SIZE, S3DataStore
from persisty_data.s3.s3_data_store_factory import S3_POST_MAX_BYTES, S3DataStoreFactory
from persisty_data.upload_form import UploadForm
from persisty_data.web.data_store_routes import DataStoreRoutes
from tests.s3_backends import (
    REGION,
    empty_and_delete_bucket,
    moto_in_process,
    moto_server_endpoint,
    new_bucket_name,
    s3_debris,
    server_session,
)
from tests.servers import serve
from tests.web.support import (
    ADMIN,
    ALICE,
    AUTHORIZER,
    BOB,
    RecordErrors,
    bearer,
    encode_multipart,
    form_fields,
    has_failed,
)

SECRET = b"s3-factory-test-secret-0123456789abcdef"
FILES_PREFIX = "app/files/"  # the files store lives in a folder of the bucket
FILES_MAX = 256 * 1024
UPLOAD_EXPIRY = timedelta(minutes=5)
DOWNLOAD_EXPIRY = timedelta(minutes=10)
MIB = 1024 * 1024
PROXY_MAX = 6 * MIB  # above one part: proxied uploads go multipart
S3_FORM_FIELDS = {
    "key",
    "Content-Type",
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-date",
    "policy",
    "x-amz-signature",
}
CALLERS = {"anonymous": None, "alice": ALICE, "bob": BOB, "root": ADMIN}
T = TypeVar("T")


# region: sites


@dataclass
class S3Site:
    mode: str  # "server": moto's server over HTTP; "in_process": mock_aws
    endpoint: Optional[str]
    bucket: str
    client: Any  # a plain boto3 client, as another tool would use
    make_store: Callable[..., S3DataStore]
    files: S3DataStoreFactory  # owned keys, FILES_MAX, under FILES_PREFIX
    shared: S3DataStoreFactory  # owners write, everyone reads; no size limit
    images: S3DataStoreFactory  # owned keys, image/* only

    def s3_key(self, factory: S3DataStoreFactory, key: str) -> str:
        return factory.get_store().prefix + key


_session = None


def shared_session():
    """One boto3 session (region, test credentials) for every store here: a session caches
    the service model its clients load, which otherwise costs ~0.2 s a client."""
    global _session
    if _session is None:
        _session = server_session()
    return _session


@contextmanager
def s3_site(mode: str) -> Iterator[S3Site]:
    with moto_in_process() if mode == "in_process" else _nothing():
        endpoint = moto_server_endpoint() if mode == "server" else None
        client = shared_session().client("s3", endpoint_url=endpoint)
        bucket = new_bucket_name()
        client.create_bucket(Bucket=bucket)

        def make_store(name: str, prefix: str = "", **options) -> S3DataStore:
            # configured as a user would: endpoint URL (server) and a region (the session's)
            return S3DataStore(
                bucket, name=name, prefix=prefix, session=shared_session(), endpoint_url=endpoint, **options
            )

        expiry = dict(upload_expiry=UPLOAD_EXPIRY, download_expiry=DOWNLOAD_EXPIRY)
        site = S3Site(
            mode,
            endpoint,
            bucket,
            client,
            make_store,
            files=S3DataStoreFactory(make_store("files", FILES_PREFIX, max_item_size=FILES_MAX), **expiry),
            shared=S3DataStoreFactory(
                make_store("shared", "shared/"),
                security=OwnedDataStoreSecurity(read_by_others=True, anonymous_read=True),
                **expiry,
            ),
            images=S3DataStoreFactory(
                make_store("images", "images/", max_item_size=FILES_MAX, permitted_content_types=("image/*",)),
                **expiry,
            ),
        )
        try:
            yield site
        finally:
            empty_and_delete_bucket(client, bucket)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


@pytest.fixture(scope="module")
def server() -> Iterator[S3Site]:
    with s3_site("server") as site:
        yield site


@pytest.fixture(params=["server", "in_process"])
def site(request) -> Iterator[S3Site]:
    """Both modes, for what needs no HTTP. In-process moto is active only during the test,
    so that the server tests' clients go over HTTP, not through mock_aws."""
    if request.param == "server":
        yield request.getfixturevalue("server")
        return
    with s3_site("in_process") as in_process:
        yield in_process


@dataclass
class Hosted:
    url: str
    local: HostedDataStoreFactory  # a directory store, owned keys, FILES_MAX
    proxy: HostedDataStoreFactory  # an S3DataStore in the server's bucket, under "proxy/"
    app: RecordErrors


@pytest.fixture(scope="module")
def hosted(server, tmp_path_factory) -> Iterator[Hosted]:
    root = tmp_path_factory.mktemp("s3-factory-hosted")
    local = HostedDataStoreFactory(
        DirectoryDataStore(str(root / "local"), name="local", max_item_size=FILES_MAX), SECRET
    )
    proxy_store = server.make_store("proxy", "proxy/", part_size=MIN_PART_SIZE, max_item_size=PROXY_MAX)
    proxy = HostedDataStoreFactory(proxy_store, SECRET)
    app = RecordErrors(Starlette(routes=DataStoreRoutes([local, proxy], authorizer=AUTHORIZER).create_routes()))
    with serve(app) as url:
        # absolute form and URL links, like S3's: known once the server has its port
        local.base_url = proxy.base_url = url
        yield Hosted(url, local, proxy, app)


@pytest.fixture(autouse=True)
def server_errors_on_failure(request):
    yield
    hosted = request.node.funcargs.get("hosted")
    if hosted is not None and hosted.app.errors and has_failed(request.node):
        print("--- exceptions raised in the hosted server ---")
        for error in hosted.app.errors:
            print("".join(traceback.format_exception(error)))


# endregion

# region: helpers


def post_form(form: UploadForm, content: bytes, filename: str) -> httpx.Response:
    """The one client for every backend: the form's fields in order, then the file, as
    multipart/form-data, to form.url. Nothing else: the form is the authorization."""
    assert form.method == "POST"
    body, content_type = encode_multipart(
        form_fields(form) + [(form.file_param, (filename, content, "application/octet-stream"))]
    )
    return httpx.post(form.url, content=body, headers={"Content-Type": content_type}, timeout=30)


def read_all(store: DataStoreABC, key: str) -> bytes:
    item = store.read(key)
    assert item is not None, key
    with item.get_data_reader() as reader:
        return reader.read()


def new_key(owner: str = "alice", suffix: str = ".txt") -> str:
    return f"{owner}/{uuid.uuid4().hex[:12]}{suffix}"


def codes(violations) -> List[str]:
    return sorted(str(v) for v in violations)


def within_one_second(fn: Callable[[], T]) -> T:
    """
    fn(), run again until it starts and ends within the same second of the clock. boto3
    dates signatures and policies from the current second, truncated, as the factory does
    its expiries: within one second, they agree exactly.
    """
    while True:
        before = time.time()
        result = fn()
        if int(time.time()) == int(before):
            return result


def amz_date(value: str) -> datetime:
    return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)


def query_of(url: str) -> Dict[str, str]:
    query = parse_qs(urlsplit(url).query, keep_blank_values=True)
    assert all(len(v) == 1 for v in query.values()), url
    return {k: v[0] for k, v in query.items()}


# endregion

# region: presigned POST forms, posted to moto's server


def test_form_upload_then_read_by_the_store_by_boto3_and_by_download_url(server):
    key = new_key()
    form = server.files.get_upload_form(key, ALICE)
    assert isinstance(form, UploadForm) and form.method == "POST" and form.file_param == "file"
    assert form.url == f"{server.endpoint}/{server.bucket}"
    fields = form.fields_dict()
    assert set(fields) == S3_FORM_FIELDS
    assert fields["key"] == FILES_PREFIX + key and fields["Content-Type"] == "text/plain"
    content = os.urandom(200 * 1024)

    response = post_form(form, content, "report.txt")
    assert response.status_code == 204, response.text  # S3's answer without success_action_status

    s3_key = FILES_PREFIX + key
    head = server.client.head_object(Bucket=server.bucket, Key=s3_key)
    assert head["ContentType"] == "text/plain" and head["ContentLength"] == len(content)
    assert "sha256" not in head["Metadata"]  # a form upload carries no hash
    item = server.files.get_store().read(key)
    assert (item.key, item.size, item.content_type) == (key, len(content), "text/plain")
    assert item.updated_at.tzinfo is not None
    assert item.etag == hashlib.sha256(content).hexdigest()  # computed on first use...
    head = server.client.head_object(Bucket=server.bucket, Key=s3_key)
    assert head["Metadata"]["sha256"] == item.etag  # ...and saved back
    assert head["ContentType"] == "text/plain" and head["ContentLength"] == len(content)
    assert read_all(server.files.get_store(), key) == content
    assert server.client.get_object(Bucket=server.bucket, Key=s3_key)["Body"].read() == content

    url = server.files.get_download_url(key, ALICE)
    assert url.startswith(f"{server.endpoint}/{server.bucket}/{FILES_PREFIX}{key}?")
    download = httpx.get(url, timeout=30)  # no credentials: the URL is the authorization
    assert download.status_code == 200
    assert download.content == content
    assert download.headers["content-type"] == "text/plain"
    # text/plain without a charset is not known to be passive: an attachment
    assert download.headers["content-disposition"] == f"attachment; filename*=UTF-8''{key.rsplit('/', 1)[1]}"


@pytest.mark.parametrize("status", [200, 201, 204])
def test_success_action_status(server, status):
    key = new_key()
    form = server.files.get_upload_form(key, ALICE, success_action_status=status)
    assert form.fields_dict()["success_action_status"] == str(status)
    assert {"success_action_status": str(status)} in decode_policy(form.fields_dict()["policy"])["conditions"]
    response = post_form(form, b"with a status", "a.txt")
    assert response.status_code == status, response.text
    assert read_all(server.files.get_store(), key) == b"with a status"


def test_success_action_redirect(server):
    key = new_key()
    redirect = "https://app.example/uploaded?from=test"
    form = server.files.get_upload_form(key, ALICE, success_action_redirect=redirect)
    fields = form.fields_dict()
    assert fields["success_action_redirect"] == redirect
    assert {"success_action_redirect": redirect} in decode_policy(fields["policy"])["conditions"]
    response = post_form(form, b"redirected", "a.txt")
    assert response.status_code == 303, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == "https://app.example/uploaded"
    # S3 names the object: bucket and object key (the store's folder included)
    query = parse_qs(location.query)
    assert query["from"] == ["test"] and query["bucket"] == [server.bucket] and query["key"] == [FILES_PREFIX + key]
    assert read_all(server.files.get_store(), key) == b"redirected"


def test_unusual_keys_and_an_empty_file(server):
    for key, content in (("alice/dir/a report \u00fc \u6587.txt", b"unicode key"), (new_key(), b"")):
        form = server.files.get_upload_form(key, ALICE)
        assert post_form(form, content, "x.txt").status_code == 204
        item = server.files.get_store().read(key)
        assert item.size == len(content) and item.etag == hashlib.sha256(content).hexdigest()
        assert httpx.get(server.files.get_download_url(key, ALICE)).content == content


def test_form_replaces_previous_content(server):
    key = new_key()
    store = server.files.get_store()
    store.write_bytes(key, b"the original")
    assert store.read(key).etag == hashlib.sha256(b"the original").hexdigest()
    assert post_form(server.files.get_upload_form(key, ALICE), b"replaced", "a.txt").status_code == 204
    item = store.read(key)
    # the sha256 the store wrote is gone with the old object: the new etag is the new hash
    assert item.size == 8 and item.etag == hashlib.sha256(b"replaced").hexdigest()
    assert read_all(store, key) == b"replaced"


# endregion

# region: one client and curl, against S3 and hosted forms

TARGETS = ["s3", "hosted", "hosted_over_s3"]


def target_factory(server: S3Site, hosted: Hosted, target: str) -> DataStoreFactoryABC:
    return {"s3": server.files, "hosted": hosted.local, "hosted_over_s3": hosted.proxy}[target]


@pytest.mark.parametrize("target", TARGETS)
def test_one_client_posts_every_form(server, hosted, target):
    factory = target_factory(server, hosted, target)
    key = new_key()
    form = factory.get_upload_form(key, ALICE)
    # one shape: an absolute URL, the fields, the file last
    assert form.url.startswith("http://127.0.0.1:") and form.method == "POST" and form.file_param == "file"
    fields = form.fields_dict()
    assert fields["Content-Type"] == "text/plain" and "policy" in fields
    assert fields["key"].endswith(key)
    content = os.urandom(64 * 1024)
    response = post_form(form, content, "a.txt")
    assert response.status_code == (204 if target == "s3" else 201), response.text
    assert read_all(factory.get_store(), key) == content
    assert httpx.get(factory.get_download_url(key, ALICE)).content == content


@pytest.mark.parametrize("target", TARGETS)
def test_curl_posts_every_form(server, hosted, target, tmp_path):
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    factory = target_factory(server, hosted, target)
    key = new_key(suffix=" with space.png")
    form = factory.get_upload_form(key, ALICE)
    assert form.fields_dict()["Content-Type"] == "image/png"  # guessed from the key
    path = tmp_path / "upload.png"
    content = b"\x89PNG\r\n\x1a\n" + os.urandom(100 * 1024)
    path.write_bytes(content)
    args = [curl, "-sS", "--max-time", "30", "-o", os.devnull, "-w", "%{http_code}"]
    for field in form.fields:  # in order; --form-string: values taken literally (no @file, <file)
        args += ["--form-string", f"{field.name}={field.value}"]
    args += ["-F", f"{form.file_param}=@{path};type=image/png", form.url]
    result = subprocess.run(args, capture_output=True, timeout=60, check=True)
    assert result.stdout.decode() == ("204" if target == "s3" else "201"), result.stderr
    item = factory.get_store().read(key)
    assert item.content_type == "image/png" and item.etag == hashlib.sha256(content).hexdigest()
    assert read_all(factory.get_store(), key) == content


# endregion

# region: the policy S3 enforces (moto does not: read off the policy boto3 signed)


def test_policy_binds_exact_key_content_type_size_bucket_and_expiry(site):
    key = new_key()
    form = within_one_second(lambda: site.files.get_upload_form(key, ALICE))
    fields = form.fields_dict()
    policy = decode_policy(fields["policy"])
    conditions = policy["conditions"]
    assert {"key": FILES_PREFIX + key} in conditions
    assert {"Content-Type": "text/plain"} in conditions
    assert ["content-length-range", 0, FILES_MAX] in conditions
    assert {"bucket": site.bucket} in conditions
    # no starts-with anywhere: every value is exact
    assert not [c for c in conditions if isinstance(c, list) and c[0] != "content-length-range"]
    # SigV4 POST: algorithm, credential scope and date are fields and conditions too
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    assert fields["x-amz-credential"].endswith(f"/{REGION}/s3/aws4_request")
    assert len(fields["x-amz-signature"]) == 64
    for name in ("x-amz-algorithm", "x-amz-credential", "x-amz-date"):
        assert {name: fields[name]} in conditions
    # the form expires when the policy does, the configured time after it was signed
    assert parse_expiration(policy) == form.expire_at
    assert form.expire_at - amz_date(fields["x-amz-date"]) == UPLOAD_EXPIRY
    shorter = within_one_second(lambda: site.files.get_upload_form(key, ALICE, expire_in=timedelta(seconds=42)))
    assert parse_expiration(decode_policy(shorter.fields_dict()["policy"])) == shorter.expire_at
    assert shorter.expire_at - amz_date(shorter.fields_dict()["x-amz-date"]) == timedelta(seconds=42)


def test_policy_accepts_the_upload_and_refuses_every_deviation(site):
    key = new_key()
    form = site.files.get_upload_form(key, ALICE)
    fields = form.fields_dict()
    policy = decode_policy(fields["policy"])
    bucket = {"bucket": site.bucket}  # S3 takes the bucket from the form's URL

    def check(fields=fields, size=10, now=None, implicit=bucket):
        return codes(validate_post_policy(policy, fields, size, now, implicit))

    assert check() == [] and check(size=0) == [] and check(size=FILES_MAX) == []
    assert check(size=FILES_MAX + 1) == ["content_length_out_of_range"]
    assert check(size=S3_POST_MAX_BYTES) == ["content_length_out_of_range"]
    for content_type in ("text/html", "text/plain; charset=utf-8", "TEXT/PLAIN", ""):
        assert check({**fields, "Content-Type": content_type}) == ["field_mismatch:content-type"], content_type
    assert check({k: v for k, v in fields.items() if k != "Content-Type"}) == ["missing_field:content-type"]
    for other in (
        FILES_PREFIX + new_key("bob"),
        FILES_PREFIX + new_key(),  # alice's, but another key
        key,  # outside the store's folder
        FILES_PREFIX + key + ".html",
        FILES_PREFIX + "alice/${filename}",
    ):
        assert check({**fields, "key": other}) == ["field_mismatch:key"], other
    for name, value in (
        ("acl", "public-read"),
        ("x-amz-meta-sha256", "0" * 64),
        ("Cache-Control", "max-age=99999"),
        ("Content-Disposition", "inline"),
        ("success_action_redirect", "https://evil.example/"),
        ("success_action_status", "201"),
        ("x-amz-server-side-encryption", "AES256"),
    ):
        assert check({**fields, name: value}) == [f"field_not_in_policy:{name.lower()}"], name
    assert check(now=form.expire_at) == ["policy_expired"]
    assert check(now=form.expire_at + timedelta(days=1)) == ["policy_expired"]
    assert check(now=form.expire_at - timedelta(seconds=1)) == []
    assert check(implicit={"bucket": "another-bucket"}) == ["field_mismatch:bucket"]
    assert check({**fields, "bucket": "another-bucket"}) == ["field_mismatch:bucket"]


def test_success_action_status_is_bound_exactly(site):
    form = site.files.get_upload_form(new_key(), ALICE, success_action_status=201)
    fields = form.fields_dict()
    policy = decode_policy(fields["policy"])
    bucket = {"bucket": site.bucket}
    assert codes(validate_post_policy(policy, fields, 1, implicit_fields=bucket)) == []
    assert codes(validate_post_policy(policy, {**fields, "success_action_status": "200"}, 1, None, bucket)) == [
        "field_mismatch:success_action_status"
    ]
    with pytest.raises(ValueError):
        site.files.get_upload_form(new_key(), ALICE, success_action_status=302)


def test_content_length_range_without_a_store_limit_is_s3s_post_limit(site):
    def size_range(factory):
        policy = decode_policy(factory.get_upload_form(new_key(), ALICE).fields_dict()["policy"])
        return [c for c in policy["conditions"] if isinstance(c, list) and c[0] == "content-length-range"]

    assert size_range(site.shared) == [["content-length-range", 0, S3_POST_MAX_BYTES]]
    huge = S3DataStoreFactory(site.make_store("huge", "huge/", max_item_size=2 * S3_POST_MAX_BYTES))
    assert size_range(huge) == [["content-length-range", 0, S3_POST_MAX_BYTES]]


def test_content_types_of_forms(site):
    form = site.images.get_upload_form(new_key(suffix=".png"), ALICE)
    assert form.fields_dict()["Content-Type"] == "image/png"
    explicit = site.images.get_upload_form(new_key(suffix=".bin"), ALICE, content_type="image/webp")
    assert explicit.fields_dict()["Content-Type"] == "image/webp"
    assert {"Content-Type": "image/webp"} in decode_policy(explicit.fields_dict()["policy"])["conditions"]
    with pytest.raises(ContentTypeNotPermittedError):
        site.images.get_upload_form(new_key(suffix=".html"), ALICE)
    with pytest.raises(ContentTypeNotPermittedError):
        site.images.get_upload_form(new_key(suffix=".png"), ALICE, content_type="text/html")
    for malformed in ("image/png,text/html", "image/png text/html", "image/png\r\nx: y", "image/*"):
        with pytest.raises(MalformedContentTypeError):
            site.images.get_upload_form(new_key(suffix=".png"), ALICE, content_type=malformed)
    canonical = site.images.get_upload_form(new_key(suffix=".png"), ALICE, content_type="IMAGE/PNG;Q=1")
    assert canonical.fields_dict()["Content-Type"] == "image/png; q=1"
    with pytest.raises(InvalidKeyError):
        site.files.get_upload_form("alice/../bob/x.txt", ALICE)


# endregion

# region: presigned GET URLs


def test_download_url_is_sigv4_and_expires_as_configured(site):
    key = new_key()
    site.files.get_store().write_bytes(key, b"signed")
    url = within_one_second(lambda: site.files.get_download_url(key, ALICE))
    query = query_of(url)
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Expires"] == str(int(DOWNLOAD_EXPIRY.total_seconds()))
    assert query["X-Amz-Credential"].endswith(f"/{REGION}/s3/aws4_request")
    assert query["X-Amz-SignedHeaders"] == "host"
    assert len(query["X-Amz-Signature"]) == 64
    assert urlsplit(url).path.endswith(f"/{FILES_PREFIX}{key}")
    assert query["response-content-type"] == "text/plain"
    assert query["response-content-disposition"] == f"attachment; filename*=UTF-8''{key.rsplit('/', 1)[1]}"
    for expire_in, expected in ((timedelta(seconds=90), "90"), (timedelta(days=30), "604800")):
        # at most 7 days: SigV4's limit
        url = within_one_second(lambda e=expire_in: site.files.get_download_url(key, ALICE, expire_in=e))
        assert query_of(url)["X-Amz-Expires"] == expected
    if site.mode == "server":
        assert httpx.get(url).content == b"signed"


# The stored content type -> what the URL makes S3 answer (inline only if passive).
DOWNLOADS = {
    "text/html": ("text/html", "attachment"),
    "image/svg+xml": ("image/svg+xml", "attachment"),
    "application/javascript": ("application/javascript", "attachment"),
    "text/plain": ("text/plain", "attachment"),
    "text/plain;charset=UTF-8": ("text/plain; charset=UTF-8", "inline"),
    "image/png": ("image/png", "inline"),
    "video/mp4": ("video/mp4", "inline"),
}


@pytest.mark.parametrize("content_type", list(DOWNLOADS))
def test_download_urls_force_content_type_and_disposition(site, content_type):
    key = f"alice/{uuid.uuid4().hex[:8]} page \u00fc.bin"
    content = b"<script>alert(document.domain)</script>"
    if site.mode == "server":  # uploaded by a form, to moto over HTTP
        form = site.files.get_upload_form(key, ALICE, content_type=content_type)
        assert post_form(form, content, "a.bin").status_code == 204
    else:
        site.files.get_store().write_bytes(key, content, content_type)
    url = site.files.get_download_url(key, ALICE)
    query = query_of(url)
    served_type, disposition = DOWNLOADS[content_type]
    expected = f"{disposition}; filename*=UTF-8''{quote(key.rsplit('/', 1)[1], safe='')}"
    assert query["response-content-type"] == served_type
    assert query["response-content-disposition"] == expected
    assert query["X-Amz-SignedHeaders"] == "host"  # the overrides are in the signed query
    if site.mode == "server":
        response = httpx.get(url)
        assert response.status_code == 200 and response.content == content
        assert response.headers["content-type"] == served_type
        assert response.headers["content-disposition"] == expected


def test_download_urls_override_what_another_tool_stored(server):
    """An object put by another tool, with its own Content-Type and Content-Disposition:
    the URL still makes S3 answer with the decision of download_headers."""
    key = new_key(suffix=".html")
    s3_key = server.s3_key(server.files, key)
    server.client.put_object(
        Bucket=server.bucket,
        Key=s3_key,
        Body=b"<script>alert(1)</script>",
        ContentType="image/png,text/html",
        ContentDisposition="inline",
    )
    url = server.files.get_download_url(key, ALICE)
    response = httpx.get(url)
    assert response.status_code == 200
    # the stored type is malformed: the store falls back to the key's type, served as a file
    assert response.headers["content-type"] == "text/html"
    assert response.headers["content-disposition"] == f"attachment; filename*=UTF-8''{key.rsplit('/', 1)[1]}"


# endregion

# region: authorization, as for the hosted factory


def test_forms_and_urls_only_for_callers_the_policy_allows(site):
    store = site.files.get_store()
    alice_key, bob_key, missing = new_key(), new_key("bob"), new_key()
    store.write_bytes(alice_key, b"alice's")
    store.write_bytes(bob_key, b"bob's")
    s3 = site.files
    assert s3.get_upload_form(alice_key, BOB) is None
    assert s3.get_upload_form(alice_key, None) is None
    assert s3.get_download_url(alice_key, BOB) is None
    assert s3.get_download_url(alice_key, None) is None
    assert s3.get_upload_form(alice_key, ALICE) is not None and s3.get_upload_form(alice_key, ADMIN) is not None
    assert s3.get_download_url(alice_key, ALICE) is not None and s3.get_download_url(alice_key, ADMIN) is not None
    assert s3.get_download_url(missing, ALICE) is None
    for other in ("Alice/x.txt", "alice2/x.txt", "alicex.txt", "bob/alice/x.txt"):
        assert s3.get_upload_form(other, ALICE) is None, other

    # the same decisions as a hosted factory under the same policy, over the same bucket
    for security in (OwnedDataStoreSecurity(), OwnedDataStoreSecurity(read_by_others=True, anonymous_read=True)):
        s3 = S3DataStoreFactory(store, security=security)
        hosted = HostedDataStoreFactory(store, SECRET, security=security)
        for caller, who in CALLERS.items():
            for key in (alice_key, bob_key, missing):
                for what, ask in (("form", "get_upload_form"), ("url", "get_download_url")):
                    s3_answer = getattr(s3, ask)(key, who)
                    hosted_answer = getattr(hosted, ask)(key, who)
                    assert (s3_answer is None) == (hosted_answer is None), (security, caller, key, what)
    shared = site.shared
    key = new_key()
    shared.get_store().write_bytes(key, b"for everyone")
    assert shared.get_download_url(key, None) is not None and shared.get_download_url(key, BOB) is not None
    assert shared.get_upload_form(key, None) is None and shared.get_upload_form(key, BOB) is None
    internal = S3DataStoreFactory(store, security=INTERNAL_ONLY)
    assert internal.get_upload_form(alice_key, ADMIN) is None and internal.get_download_url(alice_key, ADMIN) is None


# endregion

# region: a hosted factory proxying to S3


def test_hosted_factory_over_s3_uploads_and_downloads_through_the_app(server, hosted):
    store = hosted.proxy.get_store()
    key = new_key(suffix=".bin")
    content = os.urandom(MIN_PART_SIZE + 300 * 1024)  # more than one part: a multipart upload
    form = hosted.proxy.get_upload_form(key, ALICE)
    assert form.url == f"{hosted.url}/data/proxy"
    response = post_form(form, content, "big.bin")
    assert response.status_code == 201, response.text
    sha256 = hashlib.sha256(content).hexdigest()
    assert response.json()["etag"] == sha256 and response.json()["size"] == len(content)
    # in the bucket, under the store's folder, with the hash the store wrote
    stored = server.client.get_object(Bucket=server.bucket, Key="proxy/" + key)
    assert stored["Body"].read() == content
    assert stored["ContentType"] == "application/octet-stream"
    tags = server.client.get_object_tagging(Bucket=server.bucket, Key="proxy/" + key)["TagSet"]
    assert {"Key": "persisty-data-sha256", "Value": sha256} in tags
    assert s3_debris(store) == []

    url = hosted.proxy.get_download_url(key, ALICE)
    assert url.startswith(f"{hosted.url}/data/proxy/{key}?expires=")
    download = httpx.get(url, timeout=30)
    assert download.status_code == 200 and download.content == content
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["etag"] == f'"{sha256}"'
    part = httpx.get(url, headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == content[1000:2000]
    with_token = httpx.get(f"{hosted.url}/data/proxy/{key}", headers=bearer(ALICE), timeout=30)
    assert with_token.status_code == 200 and with_token.content == content
    assert httpx.get(f"{hosted.url}/data/proxy/{key}", headers=bearer(BOB)).status_code == 404


def test_hosted_factory_over_s3_refuses_oversize_keeping_the_previous_content(server, hosted):
    store = hosted.proxy.get_store()
    key = new_key(suffix=".bin")
    store.write_bytes(key, b"the original")
    form = hosted.proxy.get_upload_form(key, ALICE)
    response = post_form(form, b"z" * (PROXY_MAX + 1), "too-big.bin")
    assert response.status_code == 413, response.text
    assert response.json()["error_code"] == "item_too_large"
    assert read_all(store, key) == b"the original"
    assert server.client.get_object(Bucket=server.bucket, Key="proxy/" + key)["Body"].read() == b"the original"
    assert s3_debris(store) == []  # no multipart upload left open, no temporary object


# endregion
