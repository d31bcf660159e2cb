"""
No stored object runs script when its download URL is opened in a browser: Debian's
headless Chromium (Playwright) opens the signed URL of objects uploaded with many content
types, each holding markup that calls a binding (``pwned``) and sets document.title if
any script runs. On the hosted factory (the app's own routes over HTTP) and on S3 (moto's
server over HTTP, presigned POST uploads and presigned GETs).

Each site also has a control: the same markup served as a plain text/html page (hosted)
or through a presigned URL without our response overrides (S3). It does run script, so
a silent binding proves the headers, not a broken probe.

Chromium (/usr/bin/chromium, apt-get install chromium) is required: without it these
tests fail, they never skip.
"""

import io
import os
import time
import uuid
import wave
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator, List, Tuple
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page
from playwright.sync_api import Error as PlaywrightError
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from persisty_data.directory.directory_data_store import DirectoryDataStore
from persisty_data.factory.data_store_factory_abc import DataStoreFactoryABC
from persisty_data.factory.hosted_data_store_factory import HostedDataStoreFactory
from persisty_data.post_policy import POLICY_FIELD, SIGNATURE_FIELD, build_policy, encode_policy, sign
from persisty_data.s3.s3_data_store import S3DataStore
from persisty_data.s3.s3_data_store_factory import S3DataStoreFactory
from persisty_data.upload_form import UploadForm
from persisty_data.web.data_store_routes import DataStoreRoutes
from tests.browser import chromium, png
from tests.s3_backends import REGION, empty_and_delete_bucket, moto_server_endpoint, new_bucket_name, server_session
from tests.servers import serve
from tests.web.support import ALICE, AUTHORIZER, encode_multipart, form_fields

SECRET = b"serving-browser-test-secret-0123456789abcdef"
TIMEOUT_MS = 15_000

HTML = (
    b"<!DOCTYPE html><html><head><title>untouched</title></head><body>"
    b"<script>document.title='pwned';pwned(location.href)</script>"
    b"<img src=x onerror=\"pwned('img:'+location.href)\">"
    b"<svg onload=\"pwned('svg:'+location.href)\"></svg>"
    b"<iframe srcdoc=\"<script>parent.pwned('srcdoc:'+parent.location.href)</script>\"></iframe>"
    b"</body></html>"
)
SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" onload="pwned(\'svg-onload\')">'
    b"<title>untouched</title><script>document.title='pwned';pwned(location.href)</script></svg>"
)
XHTML = (
    b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>untouched</title></head>'
    b"<body><script>document.title='pwned';pwned(location.href)</script></body></html>"
)
XSLT_XML = (
    b'<?xml version="1.0"?><?xml-stylesheet type="text/xsl" href="#s"?>'
    b'<html xmlns="http://www.w3.org/1999/xhtml"><body><script>pwned(location.href)</script></body></html>'
)


def wav(seconds: int) -> bytes:
    """A real WAV file: silence, 8 kHz mono."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(b"\x00\x00" * 8000 * seconds)
    return buffer.getvalue()


JS = b"document.title='pwned';pwned(location.href)"


@dataclass(frozen=True)
class Case:
    name: str  # the key's base name
    content_type: str  # as uploaded
    content: bytes
    inline: bool  # what the browser must do: show it in place, else download it


CASES = [
    Case("page.html", "text/html", HTML, False),
    Case("page-utf8.html", "text/html; charset=utf-8", HTML, False),
    Case("odd-params.html", 'text/html; charset="utf-8"; x="a;b,c"', HTML, False),
    Case("image.svg", "image/svg+xml", SVG, False),
    Case("page.xhtml", "application/xhtml+xml", XHTML, False),
    Case("page.xml", "text/xml", XSLT_XML, False),
    Case("app.xml", "application/xml", XHTML, False),
    Case("script.js", "application/javascript", JS, False),
    Case("script.mjs", "text/javascript", JS, False),
    Case("data.json", "application/json", HTML, False),
    Case("blob.bin", "application/octet-stream", HTML, False),
    Case("styles.xsl", "text/xsl", XSLT_XML, False),
    Case("feed.rss", "application/rss+xml", XHTML, False),
    Case(
        "replace.bin", "multipart/x-mixed-replace; boundary=x", b"--x\r\nContent-Type: text/html\r\n\r\n" + HTML, False
    ),
    Case("plain.txt", "text/plain", HTML, False),  # no charset: not known to be passive
    Case("utf7.txt", "text/plain; charset=utf-7", HTML, False),
    Case("icon.ico", "image/x-icon", HTML, False),
    Case("html.png", "image/png", HTML, True),  # HTML bytes under a raster type: a broken image
    Case("html-params.png", 'image/png; name="<script>pwned(1)</script>"', HTML, True),
    Case("html.gif", "image/gif", HTML, True),
    Case("plain-utf8.txt", "text/plain; charset=utf-8", HTML, True),  # shown as text
    Case("quoted-charset.txt", 'text/plain; charset="ISO-8859-1"', HTML, True),
    Case("html.mp4", "video/mp4", HTML, True),
    Case("html.mp3", "audio/mpeg", HTML, True),
    Case("real.png", "image/png", png(3, 2, (20, 200, 20)), True),
    Case("real.wav", "audio/wav", wav(seconds=1), True),
]


# region: sites
@dataclass
class Site:
    name: str
    factory: DataStoreFactoryABC
    control_url: Callable[[], str]  # the same markup, served so that its script runs
    extra: List[Tuple[str, Case]] = field(default_factory=list)  # (key, case) stored by other tools


def upload(factory: DataStoreFactoryABC, key: str, case: Case) -> None:
    """Upload through the factory's own form, as a browser would post it."""
    form = factory.get_upload_form(key, ALICE, case.content_type)
    assert form is not None
    response = post_form(form, case.content)
    assert response.status_code in (201, 204), response.text


def post_form(form: UploadForm, content: bytes) -> httpx.Response:
    body, content_type = encode_multipart(form_fields(form) + [("file", ("upload", content, "text/html"))])
    return httpx.post(form.url, content=body, headers={"Content-Type": content_type}, timeout=30)


@contextmanager
def hosted_site(root: str) -> Iterator[Site]:
    store = DirectoryDataStore(os.path.join(root, "files"), name="files")
    factory = HostedDataStoreFactory(store, SECRET)

    async def control(request):
        return Response(HTML, media_type="text/html")

    routes = DataStoreRoutes([factory], authorizer=AUTHORIZER).create_routes()
    app = Starlette(routes=[*routes, Route("/control", control)])
    with serve(app) as url:
        factory.base_url = url
        yield Site("hosted", factory, lambda: f"{url}/control")


@contextmanager
def s3_site() -> Iterator[Site]:
    endpoint = moto_server_endpoint()
    client = server_session().client("s3", endpoint_url=endpoint)
    bucket = new_bucket_name()
    client.create_bucket(Bucket=bucket)
    store = S3DataStore(
        bucket, name="files", prefix="app/", session=server_session(), endpoint_url=endpoint, region_name=REGION
    )
    factory = S3DataStoreFactory(store)
    control_key = "app/alice/control.html"
    client.put_object(Bucket=bucket, Key=control_key, Body=HTML, ContentType="text/html")
    # Objects put by another tool, with types the store would refuse and their own disposition.
    extra = []
    for case in (
        Case("listed.png", "image/png,text/html", HTML, True),  # malformed: the store goes by the key: image/png
        Case("listed.html", "image/png,text/html", HTML, False),  # ...here text/html: an attachment
        Case("inline.html", "text/html", HTML, False),
        Case("inline.svg", "image/svg+xml", SVG, False),
    ):
        key = f"alice/other-tool/{case.name}"
        client.put_object(
            Bucket=bucket,
            Key=f"app/{key}",
            Body=case.content,
            ContentType=case.content_type,
            ContentDisposition="inline",
        )
        extra.append((key, case))

    def control_url() -> str:
        # What a presigned GET without the factory's overrides gives: the object as stored.
        return client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": control_key})

    try:
        yield Site("s3", factory, control_url, extra)
    finally:
        empty_and_delete_bucket(client, bucket)


@pytest.fixture(params=["hosted", "s3"])
def site(request, tmp_path) -> Iterator[Site]:
    with hosted_site(str(tmp_path)) if request.param == "hosted" else s3_site() as opened:
        yield opened


# endregion


# region: the browser
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


class Probe:
    """Records every call of window.pwned, from any page or frame of the context."""

    def __init__(self, context: BrowserContext):
        self.calls: List[str] = []
        self.dialogs: List[str] = []
        context.expose_binding("pwned", lambda source, value=None: self.calls.append(str(value)))

    def wait_for_call(self, page: Page, containing: str) -> None:
        """Playwright delivers binding calls while it waits: wait on the page until one arrives."""
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while not any(containing in call for call in self.calls):
            assert time.monotonic() < deadline, self.calls
            page.wait_for_timeout(20)


@contextmanager
def probed_context(browser: Browser) -> Iterator[Tuple[BrowserContext, Probe]]:
    context = browser.new_context(accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    probe = Probe(context)
    try:
        yield context, probe
    finally:
        context.close()


def open_download_url(context: BrowserContext, probe: Probe, url: str, case: Case) -> None:
    """Open url as a top-level page: inline content is shown, anything else downloaded."""
    page = context.new_page()
    page.on("dialog", lambda dialog: (probe.dialogs.append(dialog.message), dialog.dismiss()))
    try:
        if case.inline:
            response = page.goto(url, wait_until="load")
            assert response is not None and response.status == 200, (case, response and response.status)
            assert page.title() != "pwned", case
            if case.name == "real.png":  # passive types are really shown, sandboxed or not
                assert page.evaluate("document.images.length && document.images[0].naturalWidth") == 3
            if case.name == "real.wav":
                page.wait_for_function(
                    "() => { const m = document.querySelector('video, audio'); return m && m.readyState >= 1 }"
                )
                assert page.evaluate("document.querySelector('video, audio').duration") == 1
        else:
            with page.expect_download() as downloading:
                try:
                    page.goto(url)
                except PlaywrightError as exc:  # a navigation that becomes a download
                    assert "Download is starting" in str(exc) or "ERR_ABORTED" in str(exc), exc
            download = downloading.value
            assert download.suggested_filename == case.name, case
            assert download.failure() is None
            with open(download.path(), "rb") as file:
                assert file.read() == case.content
    finally:
        page.close()


# endregion


def test_no_stored_object_runs_script_when_its_url_is_opened(browser, site):
    keys = []
    for case in CASES:
        key = f"alice/{uuid.uuid4().hex[:8]}/{case.name}"
        upload(site.factory, key, case)
        keys.append((key, case))
    keys.extend(site.extra)
    with probed_context(browser) as (context, probe):
        for key, case in keys:
            url = site.factory.get_download_url(key, ALICE)
            assert url is not None
            open_download_url(context, probe, url, case)
        # The probe works: the same markup, served as a page, runs at once.
        control = context.new_page()
        control.goto(site.control_url(), wait_until="load")
        probe.wait_for_call(control, "control")
        assert control.title() == "pwned"
        ran = [call for call in probe.calls if "control" not in call]
        assert ran == [], ran
        assert probe.dialogs == []


def test_download_headers_decide_for_both_factories(site):
    """The one decision, read off what each site answers over HTTP."""
    key = f"alice/{uuid.uuid4().hex[:8]}/x ü.svg"
    upload(site.factory, key, Case("x.svg", "image/svg+xml", SVG, False))
    response = httpx.get(site.factory.get_download_url(key, ALICE) or "", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.headers["content-disposition"] == f"attachment; filename*=UTF-8''{quote('x ü.svg', safe='')}"
    if site.name == "hosted":  # S3 cannot add these
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["content-security-policy"] == "default-src 'none'; sandbox"


def test_a_list_of_types_never_reaches_the_browser_through_an_image_only_store(browser, tmp_path):
    """
    The reported defect: 'image/png,text/html' passed an image/* allowlist, was served inline
    and Chromium ran its script. Posted through a form the server signed to let the poster
    choose the type, it is refused (415) and nothing is stored; were it stored, Chromium
    would open it here.
    """
    store = DirectoryDataStore(str(tmp_path / "images"), name="images", permitted_content_types=("image/*",))
    factory = HostedDataStoreFactory(store, SECRET)
    app = Starlette(routes=DataStoreRoutes([factory], authorizer=AUTHORIZER).create_routes())
    key = "alice/avatar.png"
    with serve(app) as url:
        factory.base_url = url
        conditions = [{"bucket": "images"}, {"key": key}, ["starts-with", "$Content-Type", ""]]
        policy = encode_policy(build_policy(datetime.now(timezone.utc) + timedelta(minutes=5), conditions))
        fields = [("key", key), ("Content-Type", "image/png,text/html"), (POLICY_FIELD, policy)]
        body, content_type = encode_multipart(
            [*fields, (SIGNATURE_FIELD, sign(SECRET, policy)), ("file", ("avatar.png", HTML, "image/png"))]
        )
        posted = httpx.post(f"{url}/data/images", content=body, headers={"Content-Type": content_type}, timeout=30)
        stored = store.read(key)
        with probed_context(browser) as (context, probe):
            if stored is not None:
                page = context.new_page()
                page.goto(factory.get_download_url(key, ALICE) or "", wait_until="load")
                page.close()
            control = context.new_page()
            control.goto(url + "/data/images/none", wait_until="load")  # drives delivery of any call
        assert probe.calls == []
        assert stored is None
        assert posted.status_code == 415 and posted.json()["error_code"] == "malformed_content_type"
