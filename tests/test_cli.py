"""
The ``persisty-data`` command line, run as a user runs it: a separate process per
command (``python -m persisty_data.cli.main``), a TOML configuration in a temporary
folder with a directory store, a chunk store on SQLite and an S3 store on moto's server
over HTTP, and ``persisty-data serve`` in its own process for the hosted URLs and forms.

Each command costs a new interpreter, so independent commands run side by side.
"""

import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

import httpx
import pytest

from persisty_data.config.data_config import DataConfig, load_config
from persisty_data.s3.s3_data_store import S3DataStore
from persisty_data.search import KeyPrefixFilter
from tests.backends import ChunkSqliteBackend, corrupt_file
from tests.s3_backends import (
    CREDENTIALS,
    REGION,
    corrupt_object,
    empty_and_delete_bucket,
    moto_server_endpoint,
    new_bucket_name,
    server_client,
    server_session,
)
from tests.servers import free_port
from tests.terminal import run_on_a_terminal

SECRET = "cli-test-secret-0123456789abcdef-0123456789"
BIG = os.urandom(6 * 1024 * 1024 + 123)  # above the progress threshold and one S3 part
MEDIUM = os.urandom(200 * 1024 + 7)  # several chunks of the chunk store
SMALL = "héllo wörld\n".encode()
STORES = ("files", "chunks", "bucket")


@dataclass
class Cli:
    root: Path  # the working directory of every command
    config_path: Path
    env: Dict[str, str]
    bucket: str
    endpoint: str
    serve_port: int
    server: Optional[subprocess.Popen] = None

    def run(self, *args: str, input: Optional[bytes] = None, config: bool = True, **kwargs):
        command = [sys.executable, "-m", "persisty_data.cli.main"]
        if config:
            command += ["--config", str(self.config_path)]
        options = {"cwd": self.root, "env": self.env, "capture_output": True, "timeout": 60, **kwargs}
        return subprocess.run([*command, *args], input=input, **options)

    @property
    def config(self) -> DataConfig:
        return load_config(self.config_path, env={})

    def s3_store(self) -> S3DataStore:
        """The S3 store as another program sees it (the test process has no AWS env credentials)."""
        return S3DataStore(
            self.bucket, name="bucket", endpoint_url=self.endpoint, region_name=REGION, session=server_session()
        )

    def store(self, name: str):
        return self.s3_store() if name == "bucket" else self.config.get_store(name)


def run_all(*commands: Callable[[], subprocess.CompletedProcess]) -> List[subprocess.CompletedProcess]:
    """Independent commands, side by side (each one is mostly interpreter start-up)."""
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        return list(pool.map(lambda command: command(), commands))


def ok(result: subprocess.CompletedProcess, stderr: bool = False) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr.decode()
    if not stderr:
        assert result.stderr == b"", result.stderr.decode()  # quiet when piped: no progress, no noise
    return result


def failed(result: subprocess.CompletedProcess, code: int = 1) -> str:
    stderr = result.stderr.decode()
    assert result.returncode == code, (result.returncode, stderr, result.stdout)
    assert "Traceback" not in stderr, stderr
    return stderr


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    endpoint = moto_server_endpoint()
    bucket = new_bucket_name()
    client = server_client()
    client.create_bucket(Bucket=bucket)
    serve_port = free_port()
    config_path = root / "config" / "persisty-data.toml"
    config_path.parent.mkdir()
    config_path.write_text(
        f"""
[defaults]
secret = "{SECRET}"
base_url = "http://127.0.0.1:{serve_port}"

[stores.files]
backend = "directory"
root = "data/files"     # relative to this file's folder
fsync = false

[stores.chunks]
backend = "chunk"
url = "sqlite:///data/chunks.db"
chunk_size = 65536
policy = "internal"     # the CLI has full access whatever the policy

[stores.bucket]
backend = "s3"
bucket = "{bucket}"
endpoint_url = "{endpoint}"
region = "{REGION}"
part_size = 5242880
"""
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERSISTY_DATA_", "AWS_"))}
    env.update(
        AWS_ACCESS_KEY_ID=CREDENTIALS["aws_access_key_id"],
        AWS_SECRET_ACCESS_KEY=CREDENTIALS["aws_secret_access_key"],
        NO_PROXY="127.0.0.1,localhost",
        JWT_SECRET_KEY="cli-test-jwt-secret-0123456789abcdef",
    )
    cli = Cli(root, config_path, env, bucket, endpoint, serve_port)
    # ``persisty-data serve`` on the port the hosted stores' base_url names: it starts up
    # while the first tests run (see the served fixture).
    command = [sys.executable, "-m", "persisty_data.cli.main", "--config", str(config_path)]
    command += ["serve", "--port", str(serve_port), "--log-level", "warning"]
    with open(root / "serve.log", "wb") as log:
        cli.server = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield cli
    finally:
        cli.server.terminate()
        cli.server.wait(10)
        empty_and_delete_bucket(client, bucket)


@pytest.fixture(scope="module")
def served(cli):
    """The base URL of ``persisty-data serve``, once it answers GET /health."""
    url = f"http://127.0.0.1:{cli.serve_port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            response = httpx.get(f"{url}/health", timeout=2)
            if response.status_code == 200:
                break
        except httpx.TransportError:
            pass
        if cli.server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"serve did not start: {(cli.root / 'serve.log').read_text()}")
        time.sleep(0.1)
    assert response.json() == {"status": "ok", "stores": list(STORES)}
    return url


# region: the command itself
def test_console_script_installed():
    bin_dir = os.path.dirname(sys.executable)
    script = shutil.which("persisty-data", path=bin_dir)
    assert script is not None and os.path.dirname(script) == bin_dir
    result = subprocess.run([script, "--version"], capture_output=True, timeout=60)
    assert result.returncode == 0 and result.stdout.decode().startswith("persisty-data ")


def test_help_for_every_command(cli):
    commands = [(), ("ls",), ("put",), ("get",), ("rm",), ("cp",), ("verify",), ("url",), ("form",), ("serve",)]
    results = run_all(*[lambda c=c: cli.run(*c, "--help", config=False) for c in commands])
    for command, result in zip(commands, results):
        assert result.returncode == 0, (command, result.stderr)
        assert result.stdout.decode().startswith("usage: persisty-data"), command
        assert result.stderr == b""


def test_usage_errors(cli):
    results = run_all(
        lambda: cli.run(config=False),  # no command
        lambda: cli.run("put", "only-one-operand"),
        lambda: cli.run("ls", "files", "--limit", "0"),
        lambda: cli.run("put", "a.txt", "b.txt", "files:not-a-prefix"),
        lambda: cli.run("url", "files:a.txt", "--expires", "99999999"),
        lambda: cli.run("cp", "local-a", "local-b"),
        lambda: cli.run("frobnicate"),
    )
    messages = [failed(result, 2) for result in results]
    assert "a command is required" in messages[0]
    assert "required: STORE:KEY_OR_PREFIX/" in messages[1]
    assert "--limit: must be at least 1" in messages[2]
    assert "several files go into a prefix ending in '/'" in messages[3]
    assert "at most 604800 seconds" in messages[4]
    assert "cp needs STORE:KEY on at least one side" in messages[5]
    assert "invalid choice: 'frobnicate'" in messages[6]
    assert all(m.startswith("usage: persisty-data") for m in messages)


def test_malformed_content_types_are_usage_errors_and_write_nothing(cli, tmp_path):
    local = tmp_path / "page.png"
    local.write_bytes(b"<script>alert(1)</script>")
    results = run_all(
        lambda: cli.run("put", str(local), "files:types/page.png", "--content-type", "image/png,text/html"),
        lambda: cli.run("put", "-", "bucket:types/page.png", "--content-type", "image/png text/html", input=b"x"),
        lambda: cli.run("cp", str(local), "chunks:types/page.png", "--content-type", "image/png;"),
        lambda: cli.run("form", "files:types/new.png", "--content-type", "image/*"),
    )
    for result in results:
        message = failed(result, 2)
        assert message.startswith("usage: persisty-data") and "not a content type" in message
        assert result.stdout == b""
    assert cli.store("files").read("types/page.png") is None
    assert cli.store("chunks").read("types/page.png") is None
    assert cli.s3_store().read("types/page.png") is None
    canonical = cli.run("put", str(local), "files:types/ok.png", "--content-type", "IMAGE/PNG;Q=1")
    ok(canonical)
    assert cli.store("files").read("types/ok.png").content_type == "image/png; q=1"


def test_error_paths(cli, tmp_path):
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text('[stores.files]\nbackend = "directory"\nroot = "x"\nchunk_size = "big"\n')
    results = run_all(
        lambda: cli.run("get", "photos:a.png", "-"),
        lambda: cli.run("ls", "files", config=False, env={**cli.env, "PERSISTY_DATA_CONFIG": str(bad_config)}),
        lambda: cli.run("get", "files:a//b.txt", "-"),
        lambda: cli.run("get", "files:no/such/item.txt", "-"),
        lambda: cli.run("put", "no-such-local-file.txt", "files:x.txt"),
        lambda: cli.run("ls", config=False, cwd=tmp_path),  # no configuration anywhere
    )
    unknown, bad, invalid, missing, no_file, nothing = [failed(r) for r in results]
    assert unknown == "persisty-data: configuration_error: unknown store 'photos' (configured: files, chunks, bucket)\n"
    assert bad == "persisty-data: configuration_error: stores.files.chunk_size: must be an integer >= 1024, got 'big'\n"
    assert invalid.startswith("persisty-data: invalid_key: empty_segment")
    assert missing == "persisty-data: not found: files:no/such/item.txt\n"
    assert no_file == "persisty-data: no-such-local-file.txt: No such file or directory\n"
    assert "no stores are configured" in nothing
    assert all(r.stdout == b"" for r in results)


def test_config_discovery(cli, tmp_path):
    (tmp_path / "persisty-data.toml").write_text(cli.config_path.read_text())
    by_env, by_cwd = run_all(
        lambda: cli.run("ls", config=False, env={**cli.env, "PERSISTY_DATA_CONFIG": str(cli.config_path)}),
        lambda: cli.run("ls", config=False, cwd=tmp_path),
    )
    expected = (
        "files   directory  hosted  owned\nchunks  chunk      hosted  internal\nbucket  s3         s3      owned\n"
    )
    assert ok(by_env).stdout.decode() == expected
    assert ok(by_cwd).stdout.decode() == expected


# endregion


# region: transfers
def test_put_get_round_trip(cli, tmp_path):
    (tmp_path / "medium.bin").write_bytes(MEDIUM)
    (tmp_path / "small note.txt").write_bytes(SMALL)
    sources = [str(tmp_path / "medium.bin"), str(tmp_path / "small note.txt")]
    for result in run_all(*[lambda s=s: cli.run("put", *sources, f"{s}:round/") for s in STORES]):
        assert ok(result).stdout == b""
    out = {s: tmp_path / s for s in STORES}
    for folder in out.values():
        folder.mkdir()
    results = run_all(
        lambda: cli.run("get", "files:round/medium.bin", str(out["files"])),  # into a folder
        lambda: cli.run("get", "chunks:round/medium.bin", cwd=out["chunks"]),  # default: base name, in the cwd
        lambda: cli.run("get", "bucket:round/medium.bin", str(out["bucket"] / "medium.bin")),  # to a file
    )
    for result in results:
        ok(result)
    for name in STORES:
        assert (out[name] / "medium.bin").read_bytes() == MEDIUM, name
        store = cli.store(name)
        medium, small = store.read("round/medium.bin"), store.read("round/small note.txt")
        assert (medium.size, medium.etag) == (len(MEDIUM), sha256(MEDIUM))
        assert medium.content_type == "application/octet-stream"
        assert (small.etag, small.content_type) == (sha256(SMALL), "text/plain")
        assert not [p for p in out[name].iterdir() if p.name != "medium.bin"]  # no temporary files left


def test_pipes(cli):
    """``cat big | persisty-data put - bucket:k`` and ``persisty-data get bucket:k - | sha256sum``."""
    ok(cli.run("put", "-", "bucket:pipe/data.bin", "--content-type", "application/x-test", input=BIG))
    result = ok(cli.run("get", "bucket:pipe/data.bin", "-"))
    assert sha256(result.stdout) == sha256(BIG)
    item = cli.s3_store().read("pipe/data.bin")
    assert (item.etag, item.content_type) == (sha256(BIG), "application/x-test")


def test_cp_between_local_and_store(cli, tmp_path):
    (tmp_path / "local.txt").write_bytes(SMALL)
    cli.store("files").write_bytes("cp-local/remote.txt", b"remote\n")
    put, get = run_all(
        lambda: cli.run("cp", str(tmp_path / "local.txt"), "chunks:cp-local/"),
        lambda: cli.run("cp", "files:cp-local/remote.txt", str(tmp_path / "fetched.txt")),
    )
    ok(put), ok(get)
    assert cli.store("chunks").read("cp-local/local.txt").read_bytes() == SMALL
    assert (tmp_path / "fetched.txt").read_bytes() == b"remote\n"


def test_cp_within_and_across_backends(cli):
    files, chunks, bucket = cli.store("files"), cli.store("chunks"), cli.s3_store()
    original = files.write_bytes("cp/original.bin", MEDIUM)
    assert chunks.write_bytes("cp/seed.bin", MEDIUM).etag == bucket.write_bytes("cp/seed.bin", MEDIUM).etag
    results = run_all(
        lambda: cli.run("cp", "files:cp/original.bin", "files:cp/copy.bin"),  # OS copy within the store
        lambda: cli.run("cp", "files:cp/original.bin", "chunks:cp/"),  # directory -> chunk, same key
        lambda: cli.run("cp", "chunks:cp/seed.bin", "bucket:cp/from-chunks.bin"),  # chunk -> s3
        lambda: cli.run("cp", "bucket:cp/seed.bin", "files:cp/from-s3.bin"),  # s3 -> directory
        lambda: cli.run("cp", "bucket:cp/missing.bin", "files:cp/"),
    )
    for result in results[:-1]:
        ok(result)
    assert failed(results[-1]) == "persisty-data: not found: bucket:cp/missing.bin\n"
    items = [
        files.read("cp/copy.bin"),
        chunks.read("cp/original.bin"),
        bucket.read("cp/from-chunks.bin"),
        files.read("cp/from-s3.bin"),
    ]
    assert [item.etag for item in items] == [original.etag] * 4
    assert files.read("cp/from-s3.bin").read_bytes() == MEDIUM
    assert files.read("cp/missing.bin") is None


def test_verify_reports_corrupt_items(cli, tmp_path):
    files, chunks, bucket = cli.store("files"), cli.store("chunks"), cli.s3_store()
    for store in (files, chunks, bucket):
        store.write_bytes("verify/bad.bin", MEDIUM)
        store.write_bytes("verify/good.bin", SMALL)
    corrupt_file(files._checked_path("verify/bad.bin"))
    ChunkSqliteBackend().corrupt(chunks, "verify/bad.bin")
    corrupt_object(bucket, "verify/bad.bin")
    results = run_all(
        *[lambda name=name: cli.run("verify", name, "verify/") for name in STORES],
        lambda: cli.run("verify", "files:verify/good"),
        lambda: cli.run("get", "files:verify/bad.bin", str(tmp_path / "bad.bin")),
        lambda: cli.run("cp", "bucket:verify/bad.bin", "files:verify/copied.bin"),
        lambda: cli.run("verify", "files:verify/", "more/"),
    )
    for name, result in zip(STORES, results[:3]):
        stderr = failed(result)
        assert result.stdout == b"verify/bad.bin\n"
        assert stderr.startswith(f"persisty-data: corrupt: {name}:verify/bad.bin: sha256_")
        assert stderr.endswith("persisty-data: verify: 2 items (200.0 KiB) checked, 1 corrupt\n")
    good = ok(results[3], stderr=True)
    assert (
        good.stdout == b""
        and good.stderr == f"persisty-data: verify: 1 item ({len(SMALL)} B) checked, 0 corrupt\n".encode()
    )
    assert failed(results[4]).startswith("persisty-data: content_corrupted: ")
    assert os.listdir(tmp_path) == []  # no partial download left behind
    assert failed(results[5]).startswith("persisty-data: content_corrupted: ")
    assert files.read("verify/copied.bin") is None
    assert "give the prefix once" in failed(results[6], code=2)


def test_progress_bar_on_a_terminal(cli, tmp_path):
    (tmp_path / "big.bin").write_bytes(BIG)
    result, drawn = run_on_a_terminal(cli.run, "put", str(tmp_path / "big.bin"), "files:progress/big.bin")
    assert result.returncode == 0 and result.stdout == b""
    assert drawn.startswith("\rprogress/big.bin [") and drawn.endswith("\n"), drawn
    assert "100% 6.0 MiB/6.0 MiB" in drawn, drawn


@contextmanager
def sigint_ignored() -> Iterator[None]:
    """SIGINT ignored in this process, so children start with it ignored too."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_aborts_the_write(cli):
    files_root = cli.config_path.parent / "data" / "files"
    temp_dir = files_root / ".persisty_data" / "tmp"
    # A child inherits an ignored SIGINT (a background job's test run has one) and Python
    # then keeps ignoring it; this child is a user at a terminal, where Ctrl-C interrupts.
    interactive_cli = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from persisty_data.cli.main import main; sys.exit(main())"
    )
    with sigint_ignored():  # always start it as a background job would: the test cannot depend on it
        process = subprocess.Popen(
            [sys.executable, "-c", interactive_cli, "--config", str(cli.config_path), "put", "-", "files:ctrl-c"],
            cwd=cli.root,
            env=cli.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def temp_files() -> List[Path]:
        return list(temp_dir.iterdir()) if temp_dir.is_dir() else []

    try:
        process.stdin.write(b"x" * 100_000)  # more than a pipe holds: returns once the put reads
        process.stdin.flush()
        deadline = time.monotonic() + 30
        while not temp_files() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert temp_files(), "the write did not start"
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr.decode()
    assert b"Traceback" not in stderr and stdout == b""
    assert not (files_root / "ctrl-c").exists() and not temp_files()  # aborted, nothing left


# endregion


# region: ls and rm
def test_ls(cli):
    files = cli.store("files")
    for key in ("ls/a.txt", "ls/b.json", "ls/c/d.bin", "lsx/other.txt"):
        files.write_bytes(key, key.encode())
    page_key = files.search(KeyPrefixFilter("ls/"), limit=2).next_page_key  # what the CLI prints
    short, long, first, rest, every = run_all(
        lambda: cli.run("ls", "files:ls/"),
        lambda: cli.run("ls", "files:ls/", "-l"),
        lambda: cli.run("ls", "files:ls/", "--limit", "2"),
        lambda: cli.run("ls", "files:ls/", "--limit", "2", "--page-key", page_key),
        lambda: cli.run("ls", "files:ls", "--all", "--limit", "1"),
    )
    assert ok(short).stdout.decode().splitlines() == ["ls/a.txt", "ls/b.json", "ls/c/d.bin"]
    rows = [line.split() for line in ok(long).stdout.decode().splitlines()]
    item = files.read("ls/b.json")
    updated_at = item.updated_at.isoformat(timespec="seconds")
    assert rows[1] == [str(item.size), "application/json", updated_at, item.etag[:12], "ls/b.json"]
    assert [row[-1] for row in rows] == ["ls/a.txt", "ls/b.json", "ls/c/d.bin"]
    assert first.returncode == 0 and first.stdout.decode().splitlines() == ["ls/a.txt", "ls/b.json"]
    assert first.stderr.decode() == f"next page: --page-key {page_key}\n"
    assert ok(rest).stdout.decode().splitlines() == ["ls/c/d.bin"]  # the last page: no page key
    assert ok(every).stdout.decode().splitlines() == ["ls/a.txt", "ls/b.json", "ls/c/d.bin", "lsx/other.txt"]


def test_rm(cli):
    chunks = cli.store("chunks")
    chunks.write_bytes("rm/a.txt", b"a")
    chunks.write_bytes("rm/b.txt", b"b")
    missing, forced = run_all(
        lambda: cli.run("rm", "chunks:rm/a.txt", "chunks:rm/missing.txt", "chunks:rm/b.txt"),
        lambda: cli.run("rm", "--force", "chunks:rm/also-missing.txt"),
    )
    assert failed(missing) == "persisty-data: not found: chunks:rm/missing.txt\n"
    ok(forced)
    assert chunks.read("rm/a.txt") is None and chunks.read("rm/b.txt") is None  # the others went anyway


# endregion


# region: URLs and forms
def test_url(cli, served):
    cli.store("files").write_bytes("url/page.html", b"<h1>hi</h1>")
    cli.s3_store().write_bytes("url/data.bin", SMALL)
    hosted, s3, missing = run_all(
        lambda: cli.run("url", "files:url/page.html", "--expires", "60"),
        lambda: cli.run("url", "bucket:url/data.bin"),
        lambda: cli.run("url", "bucket:url/missing.bin"),
    )
    hosted_url = ok(hosted).stdout.decode().strip()
    assert hosted_url.startswith(f"{served}/data/files/url/page.html?expires=")
    response = httpx.get(hosted_url)
    assert response.status_code == 200 and response.content == b"<h1>hi</h1>"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"] == "attachment; filename*=UTF-8''page.html"
    assert response.headers["content-security-policy"] == "default-src 'none'; sandbox"
    s3_url = ok(s3).stdout.decode().strip()
    assert s3_url.startswith(f"{cli.endpoint}/{cli.bucket}/url/data.bin?") and "X-Amz-Signature=" in s3_url
    response = httpx.get(s3_url)  # presigned by the CLI, served by moto
    assert response.status_code == 200 and response.content == SMALL
    assert failed(missing) == "persisty-data: not found: bucket:url/missing.bin\n"


def test_form(cli, served):
    hosted, s3 = run_all(
        lambda: cli.run("form", "chunks:form/new.txt", "--content-type", "text/plain", "--expires", "300"),
        lambda: cli.run("form", "bucket:form/new.bin"),
    )
    for result, content, expected_status in ((hosted, SMALL, 201), (s3, BIG, 204)):
        form = json.loads(ok(result).stdout)
        assert form["method"] == "POST" and form["file_param"] == "file"
        fields = {f["name"]: f["value"] for f in form["fields"]}
        response = httpx.post(form["url"], data=fields, files={form["file_param"]: ("f", content)}, timeout=30)
        assert response.status_code == expected_status, response.text
    assert json.loads(hosted.stdout)["url"] == f"{served}/data/chunks"  # the served hosted endpoint
    item = cli.store("chunks").read("form/new.txt")
    assert (item.etag, item.content_type) == (sha256(SMALL), "text/plain")
    assert cli.s3_store().read("form/new.bin").etag == sha256(BIG)


def test_form_curl_command_on_a_terminal(cli, served):
    (cli.root / "curl me.txt").write_bytes(SMALL)
    result, drawn = run_on_a_terminal(cli.run, "form", "files:form/curl me.txt")
    assert result.returncode == 0
    form = json.loads(result.stdout)
    command = drawn.strip()
    words = shlex.split(command)
    assert words[:3] == ["curl", "-X", "POST"] and words[-3:] == ["-F", "file=@curl me.txt", form["url"]]
    sent = [tuple(value.split("=", 1)) for option, value in zip(words[3:-3:2], words[4:-3:2])]
    assert all(option == "--form-string" for option in words[3:-3:2])
    assert sent == [(f["name"], f["value"]) for f in form["fields"]]
    if shutil.which("curl"):  # the command line itself, as a user would paste it
        posted = subprocess.run(command, shell=True, cwd=cli.root, capture_output=True, timeout=30)
        assert posted.returncode == 0 and json.loads(posted.stdout)["key"] == "form/curl me.txt", posted
    else:
        response = httpx.post(form["url"], data=dict(sent), files={"file": ("curl me.txt", SMALL)})
        assert response.status_code == 201, response.text
    assert cli.store("files").read("form/curl me.txt").read_bytes() == SMALL


def test_served_actions(cli, served):
    """serve also mounts the servey actions; without a token, an owned store asks for one."""
    cli.store("files").write_bytes("alice/action.txt", b"a")
    response = httpx.get(f"{served}/actions/files/alice/action.txt")
    assert response.status_code == 401, response.text
    assert response.json()["error_code"] == "unauthorized"
    assert httpx.get(f"{served}/data/files/alice/action.txt").status_code == 401  # no signature, no token


# endregion
