"""Run a command with a real terminal (a pty) as its stderr, the way a user sees progress bars."""

import os
import pty
import subprocess
import threading
from typing import Callable, List, Tuple

Run = Callable[..., subprocess.CompletedProcess]


def run_on_a_terminal(run: Run, *args: str) -> Tuple[subprocess.CompletedProcess, str]:
    """Call run(*args) with stderr a pty and stdout a pipe; returns its result and what it drew."""
    master, slave = pty.openpty()
    drawn: List[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # the other side is closed
                return
            if not data:
                return
            drawn.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        result = run(*args, stdout=subprocess.PIPE, stderr=slave, capture_output=False)
    finally:
        os.close(slave)
        reader.join(10)
        os.close(master)
    return result, b"".join(drawn).decode()
