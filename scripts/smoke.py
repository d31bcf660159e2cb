"""
The smoke stage of scripts/test: persisty-data as a user installs it, without the test
requirements (which pull in packages such as requests through moto and awscli, and so
hide a missing dependency of an extra).

1. The README's first command, ``bash scripts/example``, with its own virtualenv
   (EXAMPLE_VENV=.venv-smoke) on a free port. Over HTTP, as the page does: sign in as a
   demo user, get an upload form, upload through it (multipart), post a message with the
   attachment, download the bytes back and compare them, and check that servey's routes
   (/openapi.json, /login, /actions/...) exist. The app is stopped by its process group.
2. The extras, one after the other, in a second virtualenv (.venv-smoke-extras, so the
   first one keeps exactly what the README's command installs): the base install, then
   [sql], [postgres] and [s3], each followed by what the README says it gives (S3 against
   a moto server run from the test virtualenv).

Stdlib only: it runs before any of our dependencies are installed. Usage:

    python3 scripts/smoke.py [--test-python .venv-test/bin/python]

CI=true rebuilds both virtualenvs. Any failure ends the run with exit status 1 and a
message that names what is missing.
"""

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP_VENV = ".venv-smoke"
EXTRAS_VENV = ".venv-smoke-extras"
STAMP = "persisty-data-smoke.stamp"  # the digest of the packaging files the venv was built from
PASSWORD = "smoke-" + uuid.uuid4().hex[:12]
USER = "alice"
START_TIMEOUT = 900  # the first run installs everything
HTTP_TIMEOUT = 30
# servey's routes that go missing when one of its optional imports fails.
REQUIRED_PATHS = (
    "/actions/sign-in",
    "/actions/post-message",
    "/actions/attachments-upload-form",
    "/actions/attachments-download-url",
)
# urllib must not send 127.0.0.1 to a proxy from the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class SmokeError(Exception):
    """What failed, said so that the reader knows what to fix."""


def say(message: str) -> None:
    print(f"==> smoke: {message}", flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**extra: str) -> Dict[str, str]:
    """The caller's environment without what would configure the app or a virtualenv for us."""
    dropped = ("PERSISTY_DATA_", "AWS_", "MESSAGER_", "PYTHONPATH", "VIRTUAL_ENV", "SERVEY_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env.update(extra)
    return env


# region: HTTP
def http(
    method: str,
    url: str,
    body: Optional[bytes] = None,
    headers: Optional[Dict[str, str]] = None,
) -> Tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with OPENER.open(request, timeout=HTTP_TIMEOUT) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def http_json(method: str, url: str, payload=None, token: Optional[str] = None, expect: int = 200):
    headers = {"Accept": "application/json"}
    body = None
    if payload is not None:
        body = json.dumps(payload).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    status, data = http(method, url, body, headers)
    if status != expect:
        raise SmokeError(f"{method} {url} answered {status}, expected {expect}: {data[:500]!r}")
    return json.loads(data)


def multipart(fields: List[Tuple[str, str]], file_param: str, file_name: str, content: bytes, content_type: str):
    """A multipart/form-data body as a browser sends a form: the fields, then the file."""
    boundary = "smoke" + uuid.uuid4().hex
    parts = []
    for name, value in fields:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    parts.append(
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{file_param}"; filename="{file_name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n".encode()
        + content
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def form_fields(form: dict) -> List[Tuple[str, str]]:
    fields = form["fields"]
    if isinstance(fields, dict):
        return list(fields.items())
    return [(field["name"], field["value"]) for field in fields]


# endregion


# region: 1. the example app
class ExampleApp:
    """``bash scripts/example`` in its own process group, its output in a log file."""

    def __init__(self, venv: str, work_dir: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(work_dir, "example.log")
        self.env = clean_env(
            EXAMPLE_VENV=venv,
            MESSAGER_PORT=str(self.port),
            MESSAGER_PASSWORD=PASSWORD,
            MESSAGER_DATABASE_URL="sqlite:///" + os.path.join(work_dir, "messages.db"),
            PERSISTY_DATA_ATTACHMENTS_ROOT=os.path.join(work_dir, "attachments"),
        )
        self.process: Optional[subprocess.Popen] = None

    def start(self) -> None:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                ["bash", "scripts/example"],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as a whole
            )

    def wait_until_up(self) -> None:
        """Poll until the app answers, or fail as soon as scripts/example exits."""
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SmokeError(f"scripts/example exited with status {self.process.returncode}:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise SmokeError(f"the app did not listen on port {self.port} within {START_TIMEOUT} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=20)

    def log_tail(self, lines: int = 40) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as log:
            return "".join(log.readlines()[-lines:])


def check_routes(url: str) -> None:
    status, body = http("GET", f"{url}/openapi.json")
    if status != 200:
        raise SmokeError(
            f"GET /openapi.json answered {status}: servey registered no REST routes; one of its optional"
            " imports (requests, python_multipart...) is missing from the server extra"
        )
    spec = json.loads(body)
    missing = [path for path in REQUIRED_PATHS if path not in spec.get("paths", {})]
    if missing:
        raise SmokeError(f"/openapi.json lacks {missing}: servey registered no action routes (a missing dependency?)")
    status, body = http("POST", f"{url}/login", b"username=nobody&password=wrong", _FORM_HEADERS)
    if status in (404, 405):
        raise SmokeError(f"POST /login answered {status}: servey's login route is missing: {body[:200]!r}")


_FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


def upload_and_download(url: str, token: str) -> None:
    key = f"{USER}/{uuid.uuid4().hex}-smoke.txt"
    content = ("smoke test " + uuid.uuid4().hex + "\n").encode() * 100
    query = urllib.parse.urlencode({"key": key, "content_type": "text/plain"})
    form = http_json("GET", f"{url}/actions/attachments-upload-form?{query}", token=token)
    body, content_type = multipart(
        form_fields(form), form.get("file_param", "file"), "smoke.txt", content, "text/plain"
    )
    status, answer = http(
        form.get("method", "POST"), urllib.parse.urljoin(url + "/", form["url"]), body, {"Content-Type": content_type}
    )
    if not 200 <= status < 300:
        raise SmokeError(f"the upload through the form answered {status}: {answer[:500]!r}")
    say(f"uploaded {len(content)} bytes through the form to {key}")
    message = http_json("POST", f"{url}/actions/post-message", {"text": "smoke", "attachment_key": key}, token)
    if message.get("attachment_key") != key:
        raise SmokeError(f"the posted message does not carry the attachment: {message}")
    query = urllib.parse.urlencode({"key": key})
    download_url = http_json("GET", f"{url}/actions/attachments-download-url?{query}", token=token)
    status, downloaded = http("GET", urllib.parse.urljoin(url + "/", download_url))
    if status != 200 or downloaded != content:
        raise SmokeError(
            f"the download answered {status} with {len(downloaded)} bytes, not the {len(content)} uploaded"
        )
    say("downloaded the same bytes back through the signed URL")


def check_example(work_dir: str) -> None:
    fresh = remove_stale_venv(APP_VENV)
    say(f"bash scripts/example with EXAMPLE_VENV={APP_VENV} (the README's first command, no test requirements)")
    app = ExampleApp(APP_VENV, work_dir)
    app.start()
    try:
        app.wait_until_up()
        say(f"the app listens at {app.url} (pid {app.process.pid})")
        check_routes(app.url)
        say(f"/openapi.json lists {', '.join(REQUIRED_PATHS)}; POST /login exists")
        signed_in = http_json("POST", f"{app.url}/actions/sign-in", {"username": USER, "password": PASSWORD})
        say(f"signed in as {signed_in['subject_id']}")
        upload_and_download(app.url, signed_in["token"])
    except (SmokeError, OSError, KeyError, ValueError) as exc:
        raise SmokeError(f"{exc}\n--- scripts/example's output (last lines) ---\n{app.log_tail()}") from None
    finally:
        app.stop()
    say("the app stopped")
    cli = os.path.join(ROOT, APP_VENV, "bin", "persisty-data")
    run([cli, "--version"], "the persisty-data command in the example's virtualenv")
    if fresh:
        write_stamp(APP_VENV)


# endregion


# region: 2. the extras, one at a time
BASE_CHECK = """
import os, sys, tempfile
from persisty_data import DirectoryDataStore, HostedDataStoreFactory, load_config
store = DirectoryDataStore(tempfile.mkdtemp())
assert store.write_bytes("a/b.txt", b"base").read_bytes() == b"base"
print("base: DirectoryDataStore, HostedDataStoreFactory, load_config")
"""

SQL_CHECK = """
import os, tempfile
from persisty_data import ChunkDataStore, SqlStoreFactory
url = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "files.db")
store = ChunkDataStore("files", SqlStoreFactory(url), chunk_size=64 * 1024)
data = os.urandom(200 * 1024)
assert store.write_bytes("big.bin", data).read_bytes() == data
print("sql: SqlStoreFactory on SQLite")
"""

POSTGRES_CHECK = """
import os, uuid
from persisty_data import ChunkDataStore, SqlStoreFactory
factory = SqlStoreFactory(os.environ["SMOKE_POSTGRES"])
store = ChunkDataStore("smoke_" + uuid.uuid4().hex[:12], factory, chunk_size=64 * 1024)
try:
    assert store.write_bytes("k.txt", b"postgres").read_bytes() == b"postgres"
finally:
    factory.drop_tables(store.item_meta, store.chunk_meta)
print("postgres: SqlStoreFactory on PostgreSQL")
"""

S3_CHECK = """
import os, urllib.request, uuid
import boto3
from persisty.security.store_security import UNSECURED
from persisty_data import S3DataStore, S3DataStoreFactory
endpoint = os.environ["SMOKE_S3_ENDPOINT"]
bucket = "smoke-" + uuid.uuid4().hex[:12]
boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
store = S3DataStore(bucket, endpoint_url=endpoint, region_name="us-east-1")
assert store.write_bytes("k.txt", b"s3").read_bytes() == b"s3"
url = S3DataStoreFactory(store, security=UNSECURED).get_download_url("k.txt", None)
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
assert opener.open(url, timeout=30).read() == b"s3", url
print("s3: S3DataStore and S3DataStoreFactory (presigned GET)")
"""


def run(command: List[str], what: str, env: Optional[Dict[str, str]] = None) -> str:
    result = subprocess.run(command, cwd=ROOT, env=env or clean_env(), capture_output=True, text=True)
    if result.returncode != 0:
        raise SmokeError(
            f"{what} failed (exit {result.returncode}): {' '.join(command)}\n{result.stdout}{result.stderr}"
        )
    return result.stdout


def packaging_digest() -> str:
    digest = hashlib.sha256()
    for name in ("setup.py", "pyproject.toml"):
        with open(os.path.join(ROOT, name), "rb") as file:
            digest.update(file.read())
    return digest.hexdigest()


def _stamp_path(venv: str) -> str:
    return os.path.join(ROOT, venv, STAMP)


def write_stamp(venv: str) -> None:
    with open(_stamp_path(venv), "w", encoding="utf-8") as stamp:
        stamp.write(packaging_digest())


def remove_stale_venv(venv: str) -> bool:
    """
    Remove venv unless it was built by a passing smoke run from the same setup.py (in CI:
    always). A venv that outlives a change of the extras would keep packages they no longer
    pull, and hide the very defect this stage looks for. Returns whether it will be new.
    """
    path = os.path.join(ROOT, venv)
    try:
        with open(_stamp_path(venv), encoding="utf-8") as stamp:
            current = stamp.read() == packaging_digest()
    except OSError:
        current = False
    if current and os.environ.get("CI") != "true":
        return False
    if os.path.isdir(path):
        say(f"removing {venv} (" + ("CI: always fresh" if current else "not built from this setup.py") + ")")
        shutil.rmtree(path)
    return True


def make_venv(venv: str) -> Tuple[str, bool]:
    path = os.path.join(ROOT, venv)
    fresh = remove_stale_venv(venv)
    if fresh:
        say(f"creating {venv}")
        run([sys.executable, "-m", "venv", path], f"creating {venv}")
    return os.path.join(path, "bin", "python"), fresh


def install(python: str, extra: str) -> None:
    spec = f".[{extra}]" if extra else "."
    say(f"pip install -e '{spec}' into {EXTRAS_VENV}")
    run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", spec], f"installing {spec}")


def check(python: str, extra: str, code: str, env: Optional[Dict[str, str]] = None) -> None:
    what = f"the imports of [{extra}]" if extra else "the base install"
    say(run([python, "-c", code], what, env).strip())


class MotoServer:
    """A moto S3 server from the test virtualenv (moto is a test requirement, never installed here)."""

    def __init__(self, python: str):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        if not os.path.exists(python):
            raise SmokeError(f"no {python} to run moto's server from: run scripts/test, or pass --test-python")
        self.process = subprocess.Popen(
            [python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SmokeError(f"the moto server exited with status {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise SmokeError("the moto server did not start within 60 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)


def check_extras(test_python: str) -> None:
    """
    In a new venv, each extra is installed just before its check, so each check proves
    that its extra (and the ones before it) is enough. A venv kept from a passing run of
    the same setup.py is only checked again: the installs would change nothing.
    """
    python, fresh = make_venv(EXTRAS_VENV)
    if not fresh:
        say(f"{EXTRAS_VENV} was built step by step from this setup.py by an earlier run: checks only")
    moto = MotoServer(test_python)
    try:
        for extra, code in (("", BASE_CHECK), ("sql", SQL_CHECK), ("postgres", POSTGRES_CHECK), ("s3", S3_CHECK)):
            if fresh:
                install(python, extra)
            check(python, extra, code, lane_env(extra, moto))
    finally:
        moto.stop()
    if fresh:
        write_stamp(EXTRAS_VENV)


def lane_env(extra: str, moto: "MotoServer") -> Dict[str, str]:
    if extra == "postgres":
        return clean_env(
            SMOKE_POSTGRES=os.environ.get("PERSISTY_DATA_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
        )
    if extra == "s3":
        moto.wait_until_up()
        return clean_env(SMOKE_S3_ENDPOINT=moto.endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    return clean_env()


# endregion


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--test-python", default=os.path.join(ROOT, ".venv-test", "bin", "python"))
    args = parser.parse_args()
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="persisty-data-smoke-") as work_dir:
            check_example(work_dir)
        check_extras(args.test_python)
    except SmokeError as exc:
        print(f"SMOKE FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    say(f"passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
