"""
Samples the hosted HTTP server with py-spy while a client uploads or downloads, and
writes the hottest functions (by own time and by total time) as text:

    cd bench && .venv/bin/python -m pdbench.spy upload --out profiles/hosted-upload.txt
    (modes: upload, upload-small, download, download-small, bare-upload)
"""

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from pdbench.content import KiB, MiB, Pattern
from pdbench.main import _wait_for_port, free_port, worker_env
from pdbench.worker import HostedClient


def summarize(raw_path: str, top: int = 30) -> str:
    own = collections.Counter()
    total = collections.Counter()
    samples = 0
    with open(raw_path) as file:
        for line in file:
            stack, _, count = line.rstrip().rpartition(" ")
            if not stack:
                continue
            count = int(count)
            samples += count
            frames = stack.split(";")
            own[frames[-1]] += count
            for frame in set(frames):
                total[frame] += count
    lines = [f"{samples} samples (all threads)", "", "own time:"]
    lines += [f"{c * 100 / samples:6.1f}%  {f}" for f, c in own.most_common(top)]
    lines += ["", "total time (in the frame or below):"]
    lines += [f"{c * 100 / samples:6.1f}%  {f}" for f, c in total.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode")
    parser.add_argument("--fs", default="tmpfs")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--out")
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="pdbench-spy-", dir={"tmpfs": "/dev/shm", "disk": "/tmp"}[args.fs])
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "pdbench.hosted_app", "--root", root, "--port", str(port)], env=worker_env()
    )
    try:
        _wait_for_port(port, server, "hosted server")
        subject = "bare" if args.mode.startswith("bare") else "hosted"
        client = HostedClient({"hosted_url": f"http://127.0.0.1:{port}", "hosted_root": root}, subject)
        pattern = Pattern()
        size = 64 * MiB if "small" not in args.mode else 10 * KiB
        stop = threading.Event()
        client.upload(*client.prepare_upload("item.bin", size), pattern.blocks(size))
        download = client.download_path("item.bin")

        def load():
            while not stop.is_set():
                if "download" in args.mode:
                    client.download(download)
                else:
                    path, body = client.prepare_upload("item.bin", size)
                    client.upload(path, body, pattern.blocks(size))

        thread = threading.Thread(target=load, daemon=True)
        thread.start()
        time.sleep(1)
        raw = os.path.join(root, "spy.txt")
        spy = os.path.join(os.path.dirname(sys.executable), "py-spy")
        subprocess.run(
            [
                spy,
                "record",
                "--pid",
                str(server.pid),
                "--duration",
                str(int(args.seconds)),
                "--rate",
                "500",
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                raw,
            ],
            check=True,
            capture_output=True,
        )
        stop.set()
        thread.join()
        text = f"# hosted server, {args.mode} on {args.fs}, py-spy {args.seconds:.0f}s\n" + summarize(raw)
        if args.out:
            with open(args.out, "w") as file:
                file.write(text + "\n")
        print(text)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
