"""
The example app (examples/messager) in a real browser: Debian's headless Chromium driven by
Playwright, against the app in its own uvicorn process, on each attachments backend chosen
by configuration alone (environment variables over examples/messager/persisty-data.toml):

- directory: the default, hosted (forms and URLs signed by the app, bytes through /data);
- s3: S3 on a moto server over HTTP with CORS configured on the bucket (and moto's global
  CORS off, so the bucket's rules are what lets the page post): the page posts the
  presigned form straight to "S3" and shows presigned GETs;
- chunk_postgres: chunk rows (and the messages) in PostgreSQL, in a schema of their own.

alice signs in on a 390 px wide screen: nothing overflows it, the page shows the store's
size limit and refuses a file over it before sending a byte. She attaches a PNG and sends
it; the image shows (loaded, naturalWidth > 0) under its file name, and the stored bytes are
the file's. bob sees it, without a "Delete" button (only his own attachments have one),
uploads to a key of his own through the page's key field and deletes it, then tries to
replace alice's attachment: the page shows the refusal, the API refuses the delete, and
alice's bytes stay as they were.

Chromium (/usr/bin/chromium, apt-get install chromium) and PostgreSQL are required: if
either is missing these tests fail, they never skip.
"""

import os
import subprocess
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional
from unittest import mock
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import boto3
import httpx
import psycopg2
import pytest
from playwright.sync_api import Browser, Page, expect

from persisty_data.config.data_config import load_config
from persisty_data.data_store_abc import DataStoreABC
from tests.browser import chromium, png
from tests.conftest import POSTGRES_URL
from tests.servers import listening_socket, port_of, start_moto
from tests.web.support import ServeyServer

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(REPO_ROOT, "examples")
CONFIG = os.path.join(EXAMPLES, "messager", "persisty-data.toml")
PASSWORD = "messager-test-password"
DATA_SECRET = "messager-test-data-secret-0123456789abcdef"
REGION = "us-east-1"  # passed as the store's region: AWS_REGION would switch persisty to DynamoDB
AWS_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
TIMEOUT_MS = 15_000
expect.set_options(timeout=TIMEOUT_MS)
PHONE = {"width": 390, "height": 844}
MAX_SIZE = 10 * 1024 * 1024  # examples/messager/persisty-data.toml


ALICE_PNG = png(3, 2, (220, 40, 40))
BOB_PNG = png(2, 2, (40, 40, 220))
INTRUDER_PNG = png(4, 4, (0, 0, 0))


# region: servers
# moto's S3 server in its own process, with two changes that make it answer browsers as S3
# does: moto's own allow-everything CORS is off (so only the bucket's CORS rules let a page
# in), and the answer to a form POST carries the bucket's CORS headers (moto 5.2 adds them
# to other object requests, but not to POST uploads: a browser then sees a network error).
MOTO_PATCHES = """
from moto.s3.responses import S3Response

_bucket_response = S3Response.bucket_response

def bucket_response(self, request, full_url, headers):
    status, response_headers, body = _bucket_response(self, request, full_url, headers)
    if request.method == "POST":
        response_headers = {**self._get_cors_headers_other(), **response_headers}
    return status, response_headers, body

S3Response.bucket_response = bucket_response
"""


@contextmanager
def moto_server() -> Iterator[str]:
    """An S3 endpoint on 127.0.0.1 that grants browsers only what a bucket's CORS rules do."""
    sock = listening_socket()
    url = f"http://127.0.0.1:{port_of(sock)}"
    env = {k: v for k, v in os.environ.items() if k != "AWS_REGION"}
    env["MOTO_DISABLE_GLOBAL_CORS"] = "true"
    process = start_moto(sock, env, before=MOTO_PATCHES)
    try:
        # The socket listens already: this waits for moto to start, and fails if it died.
        httpx.get(url + "/moto-api/", timeout=60)
        yield url
    finally:
        process.terminate()  # this process only, by its pid
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def with_search_path(url: str, schema: str) -> str:
    """The PostgreSQL URL with every connection's search_path set to schema."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
    query.append(("options", f"-csearch_path={schema}"))
    return urlunsplit(parts._replace(query=urlencode(query)))


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh schema in the test database (fails if PostgreSQL cannot be reached)."""
    schema = f"messager_{uuid.uuid4().hex[:12]}"
    connection = psycopg2.connect(POSTGRES_URL, connect_timeout=5)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE SCHEMA {schema}")
        yield schema
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        connection.close()


@dataclass
class MessagerApp:
    backend: str
    server: ServeyServer
    env: Dict[str, str]  # what configures the app (and reads its store here)
    upload_origin: str  # where the page posts forms: the app, or the S3 endpoint
    _store: Optional[DataStoreABC] = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def store(self) -> DataStoreABC:
        """The attachments store as the app configures it, built here from the same settings."""
        if self._store is None:
            self._store = load_config(CONFIG, env=self.env).get_store("attachments")
        return self._store

    def token(self, user: str) -> str:
        response = httpx.post(f"{self.url}/actions/sign-in", json={"username": user, "password": PASSWORD})
        assert response.status_code == 200, response.text
        return response.json()["token"]


@contextmanager
def messager_app(backend: str, tmp_path) -> Iterator[MessagerApp]:
    env = {
        "PYTHONPATH": EXAMPLES + os.pathsep + REPO_ROOT,
        "SERVEY_MAIN": "messager",
        "MESSAGER_PASSWORD": PASSWORD,
        "MESSAGER_DATABASE_URL": f"sqlite:///{tmp_path / 'messages.db'}",
        "PERSISTY_DATA_SECRET": DATA_SECRET,
    }
    with _backend(backend, tmp_path, env) as (app_env, on_start):
        # Only what the test sets configures the store: no stray PERSISTY_DATA_* from outside.
        inherited = [k for k in os.environ if k.startswith("PERSISTY_DATA_") and k != "PERSISTY_DATA_TEST_POSTGRES"]
        with mock.patch.dict(os.environ, AWS_CREDENTIALS if backend == "s3" else {}):
            for name in inherited:
                os.environ.pop(name)
            server = ServeyServer("messager", app_env, str(tmp_path / "server.log"))
            try:
                upload_origin = on_start(server.url)
                server.wait_until_up()
                yield MessagerApp(backend, server, app_env, upload_origin)
            except BaseException:
                print(f"--- messager log ({backend}) ---\n{server.log()}")
                raise
            finally:
                server.stop()


@contextmanager
def _backend(backend: str, tmp_path, env: Dict[str, str]):
    """(the app's environment, a callback run once the app's URL is known -> upload origin)."""
    if backend == "directory":
        env["PERSISTY_DATA_ATTACHMENTS_ROOT"] = str(tmp_path / "attachments")
        yield env, lambda app_url: app_url
    elif backend == "s3":
        with moto_server() as endpoint:
            bucket = f"messager-{uuid.uuid4().hex[:12]}"
            s3 = boto3.client(
                "s3",
                endpoint_url=endpoint,
                region_name=REGION,
                aws_access_key_id=AWS_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=AWS_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            )
            s3.create_bucket(Bucket=bucket)
            env.update(
                {
                    "PERSISTY_DATA_ATTACHMENTS_BACKEND": "s3",
                    "PERSISTY_DATA_ATTACHMENTS_BUCKET": bucket,
                    "PERSISTY_DATA_ATTACHMENTS_ENDPOINT_URL": endpoint,
                    "PERSISTY_DATA_ATTACHMENTS_REGION": REGION,
                    **AWS_CREDENTIALS,
                }
            )

            def allow_app_origin(app_url: str) -> str:
                # What a deployment does once: let the app's pages post forms to the bucket.
                rule = {
                    "AllowedOrigins": [app_url],
                    "AllowedMethods": ["GET", "PUT", "POST"],
                    "AllowedHeaders": ["*"],
                    "ExposeHeaders": ["ETag"],
                    "MaxAgeSeconds": 600,
                }
                s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [rule]})
                return endpoint

            yield env, allow_app_origin
    elif backend == "chunk_postgres":
        with postgres_schema() as schema:
            url = with_search_path(POSTGRES_URL, schema)
            env.update(
                {
                    "PERSISTY_DATA_ATTACHMENTS_BACKEND": "chunk",
                    "PERSISTY_DATA_ATTACHMENTS_URL": url,
                    "MESSAGER_DATABASE_URL": url,  # the messages too
                }
            )
            yield env, lambda app_url: app_url
    else:
        raise ValueError(backend)


# endregion


# region: the browser
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@dataclass
class Session:
    """One user's page, with what it requested and any script errors."""

    page: Page
    requests: List[str] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)


@contextmanager
def session(browser: Browser, app: MessagerApp, user: str, viewport: Optional[dict] = None) -> Iterator[Session]:
    context = browser.new_context(viewport=viewport)  # its own sessionStorage: one user per context
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    result = Session(page)
    page.on("request", lambda request: result.requests.append(f"{request.method} {request.url}"))
    page.on("pageerror", lambda error: result.problems.append(f"page error: {error}"))
    try:
        page.goto(app.url + "/")
        if viewport is not None:
            assert_fits(page, viewport)
        page.fill("#username", user)
        page.fill("#password", PASSWORD)
        page.click("#sign-in-button")
        expect(page.locator("#subject")).to_have_text(user)
        expect(page.locator("#app")).to_be_visible()
        yield result
    except BaseException:
        print(f"--- {user}'s page requests ---\n" + "\n".join(result.requests))
        print("\n".join(result.problems))
        raise
    finally:
        context.close()


def assert_fits(page: Page, viewport: dict) -> None:
    """Nothing is wider than the screen: no horizontal scrolling."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], width


def send(page: Page, text: str, filename: str, content: bytes, key: Optional[str] = None) -> None:
    page.fill("#text", text)
    page.set_input_files("#file", {"name": filename, "mimeType": "image/png", "buffer": content})
    if key is not None:
        if not page.locator("#key").is_visible():
            page.click("#advanced summary")
        page.fill("#key", key)
    page.click("#send")


def wait_for_image(page: Page, message) -> None:
    """Until the message's image has loaded (decoded: naturalWidth > 0)."""
    image = message.locator("img.attachment-image")
    expect(image).to_have_count(1)
    image.element_handle().wait_for_element_state("visible")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())


# endregion


@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", ["directory", "s3", "chunk_postgres"])
def test_messager_in_a_browser(backend, browser, tmp_path):
    with messager_app(backend, tmp_path) as app:
        # --- alice sends a PNG; it shows, and the store holds exactly its bytes ---------------
        with session(browser, app, "alice", viewport=PHONE) as alice:
            page = alice.page
            expect(page.locator("#limits")).to_have_text("Attachments: up to 10.0 MiB.")
            page.click("#advanced summary")
            expect(page.locator("#key")).to_be_visible()
            assert_fits(page, PHONE)

            # Over the limit: refused on the page, before any request.
            requests_before = len(alice.requests)
            send(page, "too big", "big.bin", b"\0" * (MAX_SIZE + 1))
            expect(page.locator("#error")).to_have_text("big.bin is 10.0 MiB: attachments may be at most 10.0 MiB.")
            since = alice.requests[requests_before:]  # the page polls latest-messages meanwhile
            assert [r for r in since if "upload-form" in r or r.startswith("POST ")] == [], since
            page.click("#advanced summary")  # closed again, for send() below

            send(alice.page, "hello from alice", "pixel.png", ALICE_PNG)
            expect(alice.page.locator("#status")).to_have_text("Sent.")
            message = alice.page.locator("li.message[data-author='alice']")
            expect(message).to_have_count(1)
            expect(message.locator(".text")).to_have_text("hello from alice")
            wait_for_image(alice.page, message)
            natural = message.locator("img.attachment-image").evaluate("i => [i.naturalWidth, i.naturalHeight]")
            assert natural == [3, 2]

            key = message.get_attribute("data-attachment-key")
            owner, unique, name = key.split("/")
            assert (owner, len(uuid.UUID(unique).hex), name) == ("alice", 32, "pixel.png"), key
            expect(message.locator("a.attachment-link")).to_have_text("pixel.png (73 B)")
            expect(message.locator("button.delete-attachment")).to_have_count(1)  # her own
            assert_fits(alice.page, PHONE)
            item = app.store.read(key)
            assert item is not None and item.read_bytes() == ALICE_PNG
            assert item.content_type == "image/png"
            etag = item.etag

            # What the browser displayed is the file, byte for byte.
            src = message.locator("img.attachment-image").get_attribute("src")
            assert httpx.get(src if src.startswith("http") else app.url + src).content == ALICE_PNG

            # The page posted the form straight to the store's endpoint (S3 itself on s3),
            # and loaded nothing from beyond 127.0.0.1.
            uploads = [r for r in alice.requests if r.startswith("POST ") and "/actions/" not in r]
            assert len(uploads) == 1 and uploads[0].startswith(f"POST {app.upload_origin}/"), uploads
            assert all(urlsplit(r.split(" ", 1)[1]).hostname == "127.0.0.1" for r in alice.requests)
            assert not alice.problems

        # --- bob sees it, writes under his own prefix, and is refused alice's ---------------
        with session(browser, app, "bob") as bob:
            page = bob.page
            alices = page.locator(f"li.message[data-attachment-key='{key}']")
            wait_for_image(page, alices)  # read_by_others: everyone signed in sees it

            expect(alices.locator("button.delete-attachment")).to_have_count(0)  # not his

            own_key = f"bob/{uuid.uuid4().hex}/chosen.png"
            send(page, "bob's own key", "bob.png", BOB_PNG, key=own_key)
            expect(page.locator("#status")).to_have_text("Sent.")
            own = page.locator(f"li.message[data-attachment-key='{own_key}']")
            wait_for_image(page, own)
            assert app.store.read(own_key).read_bytes() == BOB_PNG
            own.locator("button.delete-attachment").click()
            expect(page.locator("#status")).to_have_text("Deleted chosen.png.")
            assert app.store.read(own_key) is None

            send(page, "mine now", "intruder.png", INTRUDER_PNG, key=key)
            error = page.locator("#error")
            expect(error).to_be_visible()
            expect(error).to_contain_text(f"Upload refused for {key}: 403")
            expect(page.locator("li.message", has_text="mine now")).to_have_count(0)

            assert not bob.problems

        item = app.store.read(key)
        assert item is not None and item.etag == etag and item.read_bytes() == ALICE_PNG

        # --- and through the API: no deleting, nor posting with, someone else's attachment --
        bob_token = app.token("bob")
        path = "/actions/attachments/" + "/".join(quote(part, safe="") for part in key.split("/"))
        response = httpx.delete(f"{app.url}{path}", headers={"Authorization": f"Bearer {bob_token}"})
        assert response.status_code == 403, response.text
        assert app.store.read(key).etag == etag
        response = httpx.post(
            f"{app.url}/actions/post-message",
            json={"text": "look", "attachment_key": key},
            headers={"Authorization": f"Bearer {bob_token}"},
        )
        assert response.status_code == 403, response.text
        assert httpx.get(f"{app.url}/actions/latest-messages").status_code == 401
