"""
Real HTTP servers for tests on 127.0.0.1. Every server gets a socket that is already
listening on a port the kernel chose (listening_socket): no other process can take the
port between choosing and serving, and requests sent before the server runs wait in the
backlog instead of being refused. Servers in child processes inherit it (pass_fds).
"""

import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional

import uvicorn

# A child process's moto S3 server on an inherited listening socket: serve_moto(fd).
MOTO_ON_FD = """
import os
from werkzeug.serving import make_server
from moto.server import DomainDispatcherApplication, create_backend_app

def serve_moto(fd):
    app = DomainDispatcherApplication(create_backend_app)
    make_server("127.0.0.1", 0, app, threaded=True, fd=fd).serve_forever()
"""


def free_port() -> int:
    """A port nothing listens on now (for endpoints that must refuse connections)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening_socket() -> socket.socket:
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


def port_of(sock: socket.socket) -> int:
    return sock.getsockname()[1]


def start_child(args: List[str], sock: socket.socket, **options) -> subprocess.Popen:
    """Start a server process that serves on sock (its fd number is in args); closes ours."""
    try:
        return subprocess.Popen(args, pass_fds=[sock.fileno()], **options)
    finally:
        sock.close()


def start_moto(sock: socket.socket, env: Optional[Dict[str, str]] = None, before: str = "") -> subprocess.Popen:
    """moto's S3 server in a child process serving on sock; `before` runs first (patches)."""
    import sys

    child_env = dict(env or {})
    child_env["MOTO_PORT"] = str(port_of(sock))  # moto writes its own URLs with it
    code = MOTO_ON_FD + before + "\nimport sys\nserve_moto(int(sys.argv[1]))\n"
    return start_child(
        [sys.executable, "-c", code, str(sock.fileno())],
        sock,
        env=child_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@contextmanager
def serve(app) -> Iterator[str]:
    """Serve an ASGI app in a thread; yields its base URL and stops it on exit."""
    sock = listening_socket()
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port_of(sock)}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
