"""Shared by the web tests: JWTs, callers, a multipart encoder that keeps full control of the parts."""

import os
import secrets
from datetime import datetime, timezone
from typing import Iterable, List, Optional, Sequence, Tuple, Union

from persisty.security.jwt_permission_authorizer_factory import JwtPermissionAuthorizer
from servey.security.authorization import Authorization

from persisty_data.data_store_abc import DataStoreABC
from persisty_data.directory.directory_data_store import DirectoryDataStore
from persisty_data.upload_form import UploadForm

JWT_SECRET = "web-tests-jwt-secret-0123456789abcdef-0123"
# The same class servey picks with persisty installed (HS256 over JWT_SECRET_KEY).
AUTHORIZER = JwtPermissionAuthorizer(private_key=JWT_SECRET)

ALICE = Authorization("alice", frozenset(), None, None)
BOB = Authorization("bob", frozenset(), None, None)
ADMIN = Authorization("admin", frozenset({"root"}), None, None)
EXPIRED_ALICE = Authorization("alice", frozenset(), None, datetime(2020, 1, 1, tzinfo=timezone.utc))


def token(authorization: Authorization) -> str:
    return AUTHORIZER.encode(authorization)


def bearer(authorization: Optional[Authorization]) -> dict:
    return {"Authorization": f"Bearer {token(authorization)}"} if authorization else {}


# A part is (name, value) for a field, or (name, (filename, content, content_type)) for a file.
# value may be bytes (sent as is) and a part may be a raw bytes block (headers and body).
FilePart = Tuple[str, bytes, str]
Part = Union[Tuple[str, Union[str, bytes, FilePart]], bytes]


def encode_multipart(parts: Iterable[Part], close: bool = True) -> Tuple[bytes, str]:
    """(body, content type header) for the parts in the given order."""
    boundary = "----persisty-data-test-" + secrets.token_hex(8)
    delimiter = f"--{boundary}\r\n".encode()
    chunks: List[bytes] = []
    for part in parts:
        chunks.append(delimiter)
        if isinstance(part, bytes):
            chunks.append(part)
            chunks.append(b"\r\n")
            continue
        name, value = part
        if isinstance(value, tuple):
            filename, content, content_type = value
            chunks.append(
                f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: {content_type}\r\n\r\n".encode()
            )
            chunks.append(content)
        else:
            chunks.append(f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
            chunks.append(value if isinstance(value, bytes) else value.encode("utf-8"))
        chunks.append(b"\r\n")
    if close:
        chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def form_fields(form: UploadForm) -> List[Tuple[str, str]]:
    return [(f.name, f.value) for f in form.fields]


def replace_field(fields: Sequence[Tuple[str, str]], name: str, value: Optional[str]) -> List[Tuple[str, str]]:
    """The fields with name's value replaced (removed if value is None)."""
    out = [(n, value if n == name else v) for n, v in fields if not (n == name and value is None)]
    assert len(out) != len(fields) or any(n == name for n, _ in fields), name
    return out


def file_part(content: bytes, filename: str = "upload.bin", content_type: str = "application/octet-stream"):
    return ("file", (filename, content, content_type))


def debris(store: DataStoreABC) -> List[str]:
    """What writes left behind: temp files (directory) or chunk rows no item points at (chunk)."""
    if isinstance(store, DirectoryDataStore):
        return sorted(os.listdir(store._temp_dir))
    referenced = {row.upload_id for row in store.item_store.search_all()}
    return sorted({c.upload_id for c in store.chunk_store.search_all() if c.upload_id not in referenced})


def storage_state(store: DataStoreABC):
    """Everything a failed upload must leave unchanged: the items and (chunk) the chunk rows."""
    items = sorted((i.key, i.size, i.etag, i.content_type) for i in store.search_all())
    if isinstance(store, DirectoryDataStore):
        return items, sorted(os.listdir(store._temp_dir))
    return items, store.chunk_store.count(), store.item_store.count()


def has_failed(node) -> bool:
    """Whether a test's setup or call failed (reports kept by tests/web/conftest.py)."""
    return any(getattr(getattr(node, f"report_{when}", None), "failed", False) for when in ("setup", "call"))


class ServeyServer:
    """A servey app in its own uvicorn process (servey builds its app from env at import)."""

    def __init__(self, main: str, env: dict, log_path: str):
        import subprocess
        import sys

        from tests.servers import listening_socket, port_of, start_child

        sock = listening_socket()
        self.port = port_of(sock)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        full_env = {k: v for k, v in os.environ.items() if k != "AWS_REGION"}
        full_env.update(
            {
                "SERVEY_MAIN": main,
                "JWT_SECRET_KEY": JWT_SECRET,
                "PERSISTY_SECRET_KEY": os.environ.get("PERSISTY_SECRET_KEY", "0123456789abcdef0123456789abcdef"),
                "SQL_ECHO": "0",
                "PYTHONPATH": REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
                **{k: v.replace("{url}", self.url) for k, v in env.items()},
            }
        )
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed by stop()
        self.process = start_child(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "servey.servey_starlette.starlette_app:app",
                "--fd",
                str(sock.fileno()),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            sock,
            cwd=REPO_ROOT,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_until_up(self, timeout: float = 60) -> None:
        import httpx

        # The socket listens already: the request waits for the app to start, and fails
        # at once if the process died (its socket closes).
        try:
            httpx.get(self.url + "/openapi.json", timeout=timeout)
        except httpx.TransportError as exc:
            self.stop()
            raise RuntimeError(f"servey app did not answer ({exc!r}):\n{self.log()}") from None

    def stop(self) -> None:
        import subprocess

        if self.process.poll() is None:
            self.process.terminate()  # this process only, by its pid
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()

    def log(self, tail: int = 20000) -> str:
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-tail:]


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class RecordErrors:
    """
    ASGI wrapper for in-process test servers: keeps the exceptions the app raises instead of
    letting uvicorn log them. Python 3.11 (before 3.11.8) can fail with "SystemError: AST
    constructor recursion depth mismatch" when two threads format tracebacks at once (here:
    uvicorn's thread logging one while pytest reports a failure), which aborts the session.
    """

    def __init__(self, app):
        self.app = app
        self.errors: List[BaseException] = []

    async def __call__(self, scope, receive, send):
        try:
            await self.app(scope, receive, send)
        except Exception as exc:  # noqa: BLE001 - recorded for the test report
            self.errors.append(exc)
