"""
The HTTP edge of the hosted routes over real HTTP (uvicorn on 127.0.0.1): a client's
mistake is never a 500. Uploads over the store's size limit (any size, with or without a
Content-Length), malformed multipart bodies, ranges on empty and non-empty items, and a
download whose item is replaced while a slow client reads it.
"""

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, List, Optional, Tuple
from urllib.parse import urlsplit

import anyio
import httpx
import pytest
from starlette.applications import Starlette

from persisty_data.chunk.chunk_data_store import ChunkDataStore
from persisty_data.chunk.sql_store_factory import SqlStoreFactory
from persisty_data.directory.directory_data_store import DirectoryDataStore
from persisty_data.factory.hosted_data_store_factory import HostedDataStoreFactory
from persisty_data.factory.owned_data_store_security import OwnedDataStoreSecurity
from persisty_data.web.data_store_routes import DataStoreRoutes
from tests.apps import cut_short_app as cut_short_app_module
from tests.servers import free_port, serve
from tests.web.support import (
    ALICE,
    AUTHORIZER,
    REPO_ROOT,
    RecordErrors,
    debris,
    encode_multipart,
    file_part,
    storage_state,
)

SECRET = b"http-edge-test-secret-0123456789abcdef-0123"
MIB = 1024 * 1024
LIMIT = 10 * MIB  # the example app's attachments limit
ORIGINAL = b"the original content\n"


@dataclass
class Site:
    backend: str
    url: str
    client: httpx.Client
    files: HostedDataStoreFactory  # owned keys, at most LIMIT bytes
    app: RecordErrors

    def new_key(self) -> str:
        return f"alice/{uuid.uuid4().hex[:12]}/file.bin"

    def form(self, key: str) -> List[Tuple[str, str]]:
        form = self.files.get_upload_form(key, ALICE, content_type="application/octet-stream")
        assert form is not None
        return [(f.name, f.value) for f in form.fields]


@pytest.fixture(scope="module", params=["directory", "chunk_sqlite"])
def site(request, tmp_path_factory) -> Iterator[Site]:
    root = str(tmp_path_factory.mktemp(f"edge-{request.param}"))
    if request.param == "directory":
        store = DirectoryDataStore(os.path.join(root, "files"), name="files", max_item_size=LIMIT)
    else:
        sql = SqlStoreFactory(f"sqlite:///{os.path.join(root, 'data.sqlite')}")
        store = ChunkDataStore("files", sql, chunk_size=MIB, max_item_size=LIMIT)
    files = HostedDataStoreFactory(store, SECRET, OwnedDataStoreSecurity())
    app = RecordErrors(Starlette(routes=DataStoreRoutes([files], authorizer=AUTHORIZER).create_routes()))
    with serve(app) as url:
        with httpx.Client(base_url=url, timeout=60) as client:
            yield Site(request.param, url, client, files, app)


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error_code"] == code, response.text


# region: uploads over the size limit


def _chunks(body: bytes, size: int = 256 * 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.parametrize("file_size", [LIMIT + 1, 2 * LIMIT, 5 * LIMIT], ids=["limit+1", "2x", "5x"])
@pytest.mark.parametrize("framing", ["content_length", "chunked"])
def test_upload_over_the_limit_is_413_and_stores_nothing(site, file_size, framing):
    key = site.new_key()
    store = site.files.get_store()
    store.write_bytes(key, ORIGINAL)
    before = storage_state(store)
    errors_before = len(site.app.errors)
    body, content_type = encode_multipart(site.form(key) + [file_part(b"z" * file_size)])
    content = body if framing == "content_length" else _chunks(body)
    response = site.client.post("/data/files", content=content, headers={"Content-Type": content_type})
    assert_error(response, 413, "item_too_large")
    assert site.app.errors[errors_before:] == []
    assert storage_state(store) == before
    assert debris(store) == []
    assert store.read(key).read_bytes() == ORIGINAL


def test_upload_over_the_limit_with_curl_is_413(site, tmp_path):
    """curl sends Expect: 100-continue for a large body and reads the early answer."""
    key = site.new_key()
    path = tmp_path / "big.bin"
    path.write_bytes(b"z" * (2 * LIMIT))
    command = ["curl", "-sS", "-o", str(tmp_path / "answer.json"), "-w", "%{http_code}"]
    for name, value in site.form(key):
        command += ["--form-string", f"{name}={value}"]
    command += ["-F", f"file=@{path}", f"{site.url}/data/files"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout) == (0, "413"), result.stderr
    assert json.loads((tmp_path / "answer.json").read_text())["error_code"] == "item_too_large"
    assert site.files.get_store().read(key) is None
    assert debris(site.files.get_store()) == []


def test_the_connection_serves_the_next_request_after_a_413(site):
    """The unread rest of the body is drained: the same connection answers the next request."""
    key = site.new_key()
    body, content_type = encode_multipart(site.form(key) + [file_part(b"z" * (LIMIT + MIB))])
    with httpx.Client(base_url=site.url, timeout=60, limits=httpx.Limits(max_connections=1)) as client:
        ports = []

        def remember_port(response: httpx.Response) -> None:
            stream = response.extensions["network_stream"]
            ports.append(stream.get_extra_info("client_addr")[1])

        client.event_hooks["response"] = [remember_port]
        assert_error(
            client.post("/data/files", content=body, headers={"Content-Type": content_type}), 413, "item_too_large"
        )
        small_key = site.new_key()
        small, small_type = encode_multipart(site.form(small_key) + [file_part(b"small")])
        assert client.post("/data/files", content=small, headers={"Content-Type": small_type}).status_code == 201
    assert len(set(ports)) == 1, ports
    assert site.files.get_store().read(small_key).read_bytes() == b"small"


# endregion


def test_upload_over_the_limit_from_a_fast_sender_is_413(tmp_path):
    """
    In process, the body arrives as fast as the route asks for it: the reader is always
    waiting to hand the next batch over when the writer refuses the bytes over the limit.
    """
    store = DirectoryDataStore(str(tmp_path / "files"), name="files", max_item_size=LIMIT)
    files = HostedDataStoreFactory(store, SECRET, OwnedDataStoreSecurity())
    app = RecordErrors(Starlette(routes=DataStoreRoutes([files], authorizer=AUTHORIZER).create_routes()))
    site = Site("directory", "", httpx.Client(), files, app)
    key = site.new_key()
    body, content_type = encode_multipart(site.form(key) + [file_part(b"z" * (3 * LIMIT))])

    async def post() -> httpx.Response:
        async def chunks():
            for chunk in _chunks(body, 64 * 1024):
                yield chunk

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://edge.test") as client:
            return await client.post("/data/files", content=chunks(), headers={"Content-Type": content_type})

    for _ in range(3):
        response = anyio.run(post)
        assert app.errors == []
        assert_error(response, 413, "item_too_large")
    assert store.read(key) is None
    assert debris(store) == []


# region: malformed multipart bodies


def _with_boundary(body: bytes, content_type: str, boundary: str) -> Tuple[bytes, str]:
    """The body and content type with the encoder's boundary replaced by another."""
    old = content_type.split("boundary=", 1)[1]
    return body.replace(old.encode(), boundary.encode()), f"multipart/form-data; boundary={boundary}"


def _raw_part(header: bytes, value: bytes = b"v") -> bytes:
    return header + b"\r\n\r\n" + value


MALFORMED = {
    # python-multipart's constructor refuses boundaries over its limit (256 characters in 0.0.2x)
    "boundary_of_257_characters": lambda body, ct: _with_boundary(body, ct, "b" * 257),
    "boundary_of_4000_characters": lambda body, ct: _with_boundary(body, ct, "b" * 4000),
    "quoted_boundary_of_300_characters": lambda body, ct: _with_boundary(body, ct, '"' + "q" * 300 + '"'),
    "boundary_in_the_body_differs": lambda body, ct: (body, "multipart/form-data; boundary=another-boundary"),
    "no_final_boundary": lambda body, ct: (body[: body.rindex(b"--")], ct),
    "only_the_final_boundary": lambda body, ct: (b"--" + ct.split("boundary=")[1].encode() + b"--\r\n", ct),
    "empty_body": lambda body, ct: (b"", ct),
    "lf_instead_of_crlf": lambda body, ct: (body.replace(b"\r\n", b"\n"), ct),
    "garbage_after_the_boundary": lambda body, ct: (body.replace(b"\r\n", b"\r\nX", 1), ct),
}

# Raw parts placed before the file part.
MALFORMED_PARTS = {
    "extended_name_only": _raw_part(b"Content-Disposition: form-data; name*=UTF-8''%C3%A9"),
    "header_without_a_colon": _raw_part(b"Content-Disposition form-data"),
    "header_name_with_a_space": _raw_part(b'Content Disposition: form-data; name="x"'),
    "a_thousand_headers": _raw_part(b'Content-Disposition: form-data; name="x"' + b"\r\nX-A: b" * 1000),
}

# Content-Disposition headers that are not the plain kind browsers send, and the field
# name each must be read as (the field is not in the policy: refused with its name).
UNUSUAL_NAMES = {
    "escaped_quote_in_a_non_latin1_name": ('form-data; name="é\\"x"'.encode(), 'é"x'),
    "non_latin1_name_and_a_parameter": ('form-data; name="ü€"; x=y'.encode(), "ü€"),
    "invalid_utf8_name_and_a_parameter": (b'form-data; name="\xff\xfe"; x=y', "\ufffd\ufffd"),
    "unquoted_name_and_a_parameter": (b"form-data; name=plain; x=y", "plain"),
}


def _post(site: Site, body: bytes, content_type: str) -> httpx.Response:
    return site.client.post("/data/files", content=body, headers={"Content-Type": content_type})


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_multipart_body_is_400(site, name):
    key = site.new_key()
    body, content_type = encode_multipart(site.form(key) + [file_part(b"content")])
    body, content_type = MALFORMED[name](body, content_type)
    errors_before = len(site.app.errors)
    response = _post(site, body, content_type)
    assert_error(response, 400, "malformed_upload")
    assert site.app.errors[errors_before:] == []
    assert site.files.get_store().read(key) is None
    assert debris(site.files.get_store()) == []


@pytest.mark.parametrize("name", list(MALFORMED_PARTS))
def test_malformed_part_is_400(site, name):
    key = site.new_key()
    body, content_type = encode_multipart(site.form(key) + [MALFORMED_PARTS[name], file_part(b"content")])
    errors_before = len(site.app.errors)
    response = _post(site, body, content_type)
    assert_error(response, 400, "malformed_upload")
    assert site.app.errors[errors_before:] == []
    assert site.files.get_store().read(key) is None


# endregion


@pytest.mark.parametrize("name", list(UNUSUAL_NAMES))
def test_unusual_part_names_are_read_exactly(site, name):
    disposition, field_name = UNUSUAL_NAMES[name]
    key = site.new_key()
    part = _raw_part(b"Content-Disposition: " + disposition)
    body, content_type = encode_multipart(site.form(key) + [part, file_part(b"content")])
    errors_before = len(site.app.errors)
    response = _post(site, body, content_type)
    assert_error(response, 403, "upload_rejected")
    assert f"field_not_in_policy:{field_name}" in response.json()["error_msg"]
    assert site.app.errors[errors_before:] == []
    assert site.files.get_store().read(key) is None


# region: ranges

RANGE_CONTENT = bytes(range(256)) * 4 + b"tail"  # 1028 bytes


def _range_answer(size: int, header: str) -> Tuple[int, Optional[Tuple[int, int]]]:
    """
    What RFC 9110 asks of a single range: (206, (first, last)), (416, None) when no byte
    can be sent, or (200, None) for the whole. On an empty item a suffix range is
    satisfiable but cannot be described by a Content-Range: the whole (empty) body, 200.
    """
    first, last = header[len("bytes=") :].split("-")
    if not first:
        suffix = int(last)
        if suffix == 0:
            return 416, None
        if size == 0:
            return 200, None
        return 206, (max(size - suffix, 0), size - 1)
    if int(first) >= size:
        return 416, None
    return 206, (int(first), min(int(last), size - 1) if last else size - 1)


RANGES = ["bytes=-1", "bytes=-10", "bytes=-1028", "bytes=-5000", "bytes=-0", "bytes=0-", "bytes=0-0"]
RANGES += ["bytes=1-", "bytes=1027-", "bytes=1028-", "bytes=1028-2000", "bytes=5000-", "bytes=1000-99999"]


@pytest.mark.parametrize("size", [0, 1, len(RANGE_CONTENT)])
def test_every_range_answer_is_valid(site, size):
    content = RANGE_CONTENT[:size]
    key = site.new_key()
    site.files.get_store().write_bytes(key, content)
    url = site.files.get_download_url(key, ALICE)
    for header in RANGES:
        status, byte_range = _range_answer(size, header)
        for method in ("GET", "HEAD"):
            response = site.client.request(method, url, headers={"Range": header})
            assert response.status_code == status, (header, method, response.text)
            body = b"" if method == "HEAD" else None
            if status == 206:
                assert byte_range is not None
                first, last = byte_range
                assert response.headers["content-range"] == f"bytes {first}-{last}/{size}"
                assert response.headers["content-length"] == str(last - first + 1)
                assert response.content == (body if body is not None else content[first : last + 1])
            elif status == 416:
                assert response.headers["content-range"] == f"bytes */{size}"
                if method == "GET":
                    assert response.json()["error_code"] == "range_not_satisfiable"
            else:
                assert "content-range" not in response.headers
                assert response.headers["content-length"] == str(size)
                assert response.content == (body if body is not None else content)


HUGE = "9" * 5000  # int() refuses strings of more than 4300 digits


@pytest.mark.parametrize(
    "header, status, content_range",
    [
        (f"bytes={HUGE}-", 416, "bytes */1028"),
        (f"bytes=0-{HUGE}", 206, "bytes 0-1027/1028"),
        (f"bytes=-{HUGE}", 206, "bytes 0-1027/1028"),
        (f"bytes={'0' * 5000}5-6", 206, "bytes 5-6/1028"),
    ],
    ids=["huge_first", "huge_last", "huge_suffix", "leading_zeros"],
)
def test_range_positions_of_any_length_are_answered(site, header, status, content_range):
    key = site.new_key()
    site.files.get_store().write_bytes(key, RANGE_CONTENT)
    url = site.files.get_download_url(key, ALICE)
    errors_before = len(site.app.errors)
    for method in ("GET", "HEAD"):
        response = site.client.request(method, url, headers={"Range": header})
        assert response.status_code == status, (method, response.text)
        assert response.headers["content-range"] == content_range
        assert response.headers["x-content-type-options"] == "nosniff"
    assert site.app.errors[errors_before:] == []


# endregion


# region: a download cut short


@contextmanager
def cut_short_app(database_path: str, log_path: str) -> Iterator[str]:
    """tests/apps/cut_short_app in its own uvicorn process, its stderr in log_path."""
    port = free_port()
    env = {**os.environ, "CUT_SHORT_APP_DATABASE": database_path, "CUT_SHORT_APP_SECRET": SECRET.decode()}
    env["PYTHONPATH"] = REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "tests.apps.cut_short_app:create_app",
        "--host",
        "127.0.0.1",
    ]
    command += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, _text(log_path)
            try:
                httpx.get(url + "/data/files/none", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the app did not start"
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()  # this process only, by its pid
        process.wait(10)


def _read_head(sock: socket.socket) -> Tuple[bytes, bytes]:
    """(status line and headers, the body bytes read with them)."""
    received = b""
    while b"\r\n\r\n" not in received:
        data = sock.recv(65536)
        assert data, received
        received += data
    head, _, body = received.partition(b"\r\n\r\n")
    return head, body


def _read_until(sock: socket.socket, body: bytes, size: Optional[int]) -> bytes:
    """body plus what follows, until size bytes (None: until the server closes)."""
    while size is None or len(body) < size:
        data = sock.recv(65536)
        if not data:
            break
        body += data
    return body


def test_download_cut_short_by_a_replacement_logs_one_warning(tmp_path):
    """
    A slow client reads a 20 MiB item while it is replaced: the status is sent, so the
    client gets a truncated body (fewer bytes than the Content-Length, then the connection
    closes), and the server logs one warning line, no traceback.
    """
    database, log_path = str(tmp_path / "data.sqlite"), str(tmp_path / "server.log")
    factory = cut_short_app_module.files_factory(database, SECRET.decode())
    store = factory.get_store()
    key = "alice/big.bin"
    content = b"".join(i.to_bytes(4, "big") * 16 for i in range(20 * MIB // 64))
    store.write_bytes(key, content)
    with cut_short_app(database, log_path) as url:
        download = urlsplit(factory.get_download_url(key, ALICE) or "")
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # the slow client's window
            sock.settimeout(30)
            sock.connect((urlsplit(url).hostname, urlsplit(url).port))
            sock.sendall(f"GET {download.path}?{download.query} HTTP/1.1\r\nHost: edge\r\n\r\n".encode())
            head, body = _read_head(sock)
            assert head.startswith(b"HTTP/1.1 200 "), head
            assert f"content-length: {len(content)}".encode() in head.lower()
            body = _read_until(sock, body, MIB)
            store.write_bytes(key, b"the new content")  # the old chunks go with the old item
            body = _read_until(sock, body, None)
        assert MIB <= len(body) < len(content)
        assert body == content[: len(body)]
        deadline = time.monotonic() + 10
        while "download_cut_short" not in _text(log_path):
            assert time.monotonic() < deadline, _text(log_path)
            time.sleep(0.02)
    lines = [line for line in _text(log_path).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("WARNING persisty_data.web.download_stream download_cut_short key='alice/big.bin'")
    assert "content_changed" in lines[0]


def _text(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


# endregion
