"""
The ``persisty-data`` command line in the environments users run it in: a dependency
missing from the install, no PERSISTY_SECRET_KEY, a terminal on stderr while stdout is
piped. Each command is a real process; a terminal is a real pty.
"""

import os
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Dict, Optional

import pytest

from tests.servers import free_port
from tests.terminal import run_on_a_terminal

SECRET = "cli-environment-secret-0123456789abcdef"
BIG = os.urandom(6 * 1024 * 1024 + 5)  # above the progress threshold
# Runs the CLI after making one module unimportable, as if its package were not installed.
WITHOUT_MODULE = "import sys; sys.modules[{module!r}] = None; from persisty_data.cli.main import main; sys.exit(main())"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "persisty-data.toml").write_text(
        f"""
[defaults]
secret = "{SECRET}"

[stores.files]
backend = "directory"
root = "data/files"
fsync = false

[stores.chunks]
backend = "chunk"
url = "sqlite:///data/chunks.db"
chunk_size = 65536
"""
    )
    return tmp_path


def cli_env(**changes: Optional[str]) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERSISTY_DATA_", "AWS_"))}
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run(workdir: Path, *args: str, env: Optional[Dict[str, str]] = None, **kwargs) -> subprocess.CompletedProcess:
    options = {"cwd": workdir, "env": env or cli_env(), "capture_output": True, "timeout": 120, **kwargs}
    return subprocess.run([sys.executable, "-m", "persisty_data.cli.main", *args], **options)


# region: a missing dependency
@pytest.mark.parametrize("module", ["requests", "starlette", "uvicorn", "python_multipart"])
def test_serve_names_a_missing_dependency_in_one_line(workdir, module):
    """Without requests servey registers no route; serve must say so, not start or crash."""
    command = [sys.executable, "-c", WITHOUT_MODULE.format(module=module), "serve", "--port", str(free_port())]
    result = subprocess.run(command, cwd=workdir, env=cli_env(), capture_output=True, timeout=120)
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    assert stderr.startswith(f"persisty-data: serve needs the Python module {module!r}, which is not installed")
    assert "install the server extra (in a persisty-data checkout: pip install '.[server]')" in stderr


def test_a_store_names_its_missing_extra(workdir):
    command = [sys.executable, "-c", WITHOUT_MODULE.format(module="sqlalchemy"), "ls", "chunks:"]
    result = subprocess.run(command, cwd=workdir, env=cli_env(), capture_output=True, timeout=120)
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    assert "'sqlalchemy'" in stderr and "install the sql extra" in stderr, stderr


# endregion


# region: no PERSISTY_SECRET_KEY
def test_chunk_store_transfers_are_quiet_without_persisty_secret_key(workdir):
    env = cli_env(PERSISTY_SECRET_KEY=None)
    (workdir / "a.txt").write_bytes(b"first\n")
    (workdir / "b.txt").write_bytes(b"second\n")
    for name in ("a.txt", "b.txt"):
        put = run(workdir, "put", name, f"chunks:quiet/{name}", env=env)
        assert (put.returncode, put.stderr) == (0, b""), put.stderr.decode()
    get = run(workdir, "get", "chunks:quiet/a.txt", "-", env=env)
    assert (get.returncode, get.stdout, get.stderr) == (0, b"first\n", b""), get.stderr.decode()
    # Each process has its own random key: the page keys the CLI prints must not depend on it.
    first = run(workdir, "ls", "chunks:quiet/", "--limit", "1", env=env)
    assert first.returncode == 0 and first.stdout == b"quiet/a.txt\n", first.stderr.decode()
    page_key = first.stderr.decode().strip().rsplit(" ", 1)[-1].strip("'")
    second = run(workdir, "ls", "chunks:quiet/", "--limit", "1", "--page-key", page_key, env=env)
    assert (second.returncode, second.stdout, second.stderr) == (0, b"quiet/b.txt\n", b""), second.stderr.decode()


# endregion


# region: progress on a terminal
def test_cp_between_stores_shows_progress_on_a_terminal(workdir):
    (workdir / "big.bin").write_bytes(BIG)
    assert run(workdir, "put", "big.bin", "files:big.bin").returncode == 0
    for destination in ("chunks:copied.bin", "files:copied.bin"):  # streamed, then the OS copy
        result, drawn = run_on_a_terminal(partial(run, workdir), "cp", "files:big.bin", destination)
        assert (result.returncode, result.stdout) == (0, b""), drawn
        assert drawn.startswith("\rcopied.bin [") and drawn.endswith("\n"), drawn
        assert "100% 6.0 MiB/6.0 MiB" in drawn, drawn
    got = run(workdir, "get", "chunks:copied.bin", "-")
    assert got.stdout == BIG


def test_get_to_a_pipe_shows_progress_on_a_terminal_stderr(workdir):
    (workdir / "big.bin").write_bytes(BIG)
    assert run(workdir, "put", "big.bin", "chunks:big.bin").returncode == 0
    result, drawn = run_on_a_terminal(partial(run, workdir), "get", "chunks:big.bin", "-")
    assert result.returncode == 0 and result.stdout == BIG, drawn
    assert drawn.startswith("\rbig.bin [") and "100% 6.0 MiB/6.0 MiB" in drawn and drawn.endswith("\n"), drawn


# endregion
