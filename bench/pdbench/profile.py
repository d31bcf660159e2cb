"""
Profiles one phase of a workload for one subject with pyinstrument (or cProfile) and
writes the text report, e.g.:

    cd bench && .venv/bin/python -m pdbench.profile small-write directory_nofsync --fs tmpfs \
        --out profiles/small-write-directory_nofsync.txt

Phases: small-write, small-read, small-list, small-delete, large-write, large-read, range.
S3 subjects need --s3-endpoint (a running moto server); PostgreSQL ones use --postgres.
"""

import argparse
import os
import sys
import time

from pdbench.content import MiB, Pattern
from pdbench.subjects import SUBJECTS
from pdbench.worker import small_keys


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("phase")
    parser.add_argument("subject")
    parser.add_argument("--fs", default="tmpfs")
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--size", type=int, default=64, help="MiB, for large phases and range")
    parser.add_argument("--profiler", choices=("pyinstrument", "cprofile"), default="pyinstrument")
    parser.add_argument("--s3-endpoint")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--out")
    args = parser.parse_args()

    base = {"tmpfs": "/dev/shm", "disk": "/tmp"}[args.fs]
    root = os.path.join(base, f"pdbench-profile-{os.getpid()}")
    os.makedirs(root)
    env = {"fs_root": root, "s3_endpoint": args.s3_endpoint, "pg_url": args.postgres}
    subject = SUBJECTS[args.subject](env)
    subject.setup()
    pattern = Pattern()
    keys = small_keys(args.count)
    datas = [pattern.small(i, 1024) for i in range(args.count)]
    size = args.size * MiB
    try:
        phase = args.phase
        if phase in ("small-read", "small-list", "small-delete"):
            for key, data in zip(keys, datas):
                subject.write_small(key, data)
        if phase in ("large-read",):
            subject.write_large("big.bin", pattern, size)
        if phase == "range":
            subject.write_large("big.bin", pattern, size)

        def work():
            if phase == "small-write":
                for key, data in zip(keys, datas):
                    subject.write_small(key, data)
            elif phase == "small-read":
                for key in keys:
                    subject.read_small(key)
            elif phase == "small-list":
                for _ in range(5):
                    subject.list_all()
            elif phase == "small-delete":
                for key in keys:
                    subject.delete(key)
            elif phase == "large-write":
                subject.write_large("big.bin", pattern, size)
            elif phase == "large-read":
                subject.read_large("big.bin")
            elif phase == "range":
                import random

                rng = random.Random(1)
                for _ in range(args.count):
                    subject.read_range("big.bin", rng.randrange(0, size - 4096), 4096)
            else:
                raise SystemExit(f"unknown phase {phase}")

        started = time.perf_counter()
        if args.profiler == "pyinstrument":
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0001)
            profiler.start()
            work()
            profiler.stop()
            text = profiler.output_text(unicode=False, color=False, show_all=False)
        else:
            import cProfile
            import io
            import pstats

            profile = cProfile.Profile()
            profile.enable()
            work()
            profile.disable()
            stream = io.StringIO()
            pstats.Stats(profile, stream=stream).sort_stats("cumulative").print_stats(45)
            text = stream.getvalue()
        elapsed = time.perf_counter() - started
        header = (
            f"# {phase} {args.subject} on {args.fs}: {elapsed:.3f}s"
            f" ({args.count} ops / {args.size} MiB), load {os.getloadavg()[0]:.2f}\n"
        )
        text = header + text
        if args.out:
            with open(args.out, "w") as file:
                file.write(text)
        sys.stdout.write(text)
    finally:
        subject.teardown()
        import shutil

        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
