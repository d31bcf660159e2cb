"""
Runs the benchmark: starts the services (moto server, hosted HTTP servers), runs every
case in a fresh worker process (each after the machine has gone quiet), repetitions
interleaved (every other one in reverse order), then prints the table and writes
bench/results/<timestamp>.json. `bash bench/run --help` lists the options.
"""

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from typing import Dict, Iterator, List, Optional

from pdbench import plan, report
from pdbench.worker import RESULT_PREFIX

BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
FILESYSTEMS = {"tmpfs": "/dev/shm", "disk": "/tmp"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not start")


LIBRARY_PATH: List[str] = []  # --library: another persisty-data checkout to measure instead


def worker_env() -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(LIBRARY_PATH + [BENCH_DIR, env.get("PYTHONPATH", "")])
    env.pop("AWS_REGION", None)  # it would switch persisty's default stores to DynamoDB
    env.setdefault("PERSISTY_SECRET_KEY", "pdbench-0123456789abcdef01234567")
    env.setdefault("SQL_ECHO", "0")
    return env


@contextmanager
def process(args: List[str], port: int, what: str, log_path: str) -> Iterator[subprocess.Popen]:
    with open(log_path, "ab") as log:
        child = subprocess.Popen(args, stdout=log, stderr=log, env=worker_env(), cwd=BENCH_DIR)
    try:
        _wait_for_port(port, child, what)
        yield child
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def postgres_available(url: str) -> Optional[str]:
    try:
        import psycopg2

        psycopg2.connect(url, connect_timeout=5).close()
        return None
    except Exception as exc:  # pylint: disable=broad-except
        return f"PostgreSQL unavailable at {url}: {type(exc).__name__}"


def _cpu_idle_fraction(interval: float) -> float:
    """Share of CPU time spent idle over interval (iowait counts as busy: waiting on the disk is not quiet)."""

    def sample():
        with open("/proc/stat") as file:
            fields = [int(v) for v in file.readline().split()[1:]]
        return sum(fields), fields[3]

    total0, idle0 = sample()
    time.sleep(interval)
    total1, idle1 = sample()
    return (idle1 - idle0) / max(1, total1 - total0)


def quiesce(max_wait: float = 10.0, idle: float = 0.9) -> float:
    """
    Wait (at most max_wait seconds) until the machine is quiet: dirty pages written and
    the CPUs idle, so what one case left behind (a database checkpoint, page write-back,
    a server's garbage collection) is not billed to the next. Returns the seconds waited.
    """
    started = time.monotonic()
    os.sync()
    if not os.path.exists("/proc/stat"):
        return time.monotonic() - started
    while time.monotonic() - started < max_wait and _cpu_idle_fraction(0.1) < idle:
        pass
    return time.monotonic() - started


def run_case(spec: Dict, timeout: float, log_path: str) -> Dict:
    waited = quiesce()
    started = time.monotonic()
    load = os.getloadavg()[0]
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pdbench.worker", json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=worker_env(),
            cwd=BENCH_DIR,
        )
        output, errors = done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        output, errors = "", f"timed out after {timeout:.0f}s\n{exc.stderr or ''}"
    result = None
    for line in output.splitlines():
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
    if result is None:
        result = {"error": (errors.strip().splitlines() or ["worker failed"])[-1][:200]}
    if errors.strip():
        with open(log_path, "a") as log:
            log.write(f"--- {spec['workload']} {spec['subject']} {spec.get('fs')}\n{errors}\n")
    result["_seconds"] = time.monotonic() - started
    result["_load_before"] = load
    result["_quiesce_s"] = waited
    return result


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="bash bench/run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, 1 repetition (smoke test)")
    parser.add_argument("--reps", type=int, help="repetitions of every case (default 3; quick 1)")
    parser.add_argument("--only", help="comma-separated workloads: large,small,range,hosted")
    parser.add_argument("--subjects", help="comma-separated subjects to run (default: all)")
    parser.add_argument("--fs", default="tmpfs,disk", help="local filesystems: tmpfs,disk")
    parser.add_argument("--tmpfs-dir", default=FILESYSTEMS["tmpfs"])
    parser.add_argument("--disk-dir", default=FILESYSTEMS["disk"])
    parser.add_argument("--postgres", default=os.environ.get("PERSISTY_DATA_TEST_POSTGRES", DEFAULT_PG))
    parser.add_argument("--results", default=os.path.join(BENCH_DIR, "results"))
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per case")
    parser.add_argument(
        "--library", help="measure the persisty_data package in this directory instead (e.g. an older checkout)"
    )
    args = parser.parse_args(argv)
    if args.library:
        LIBRARY_PATH[:] = [os.path.abspath(args.library)]

    settings = json.loads(json.dumps(plan.QUICK if args.quick else plan.FULL))
    reps = args.reps or settings["reps"]
    workloads = args.only.split(",") if args.only else ["large", "small", "range", "hosted"]
    only_subjects = set(args.subjects.split(",")) if args.subjects else None
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    os.makedirs(args.results, exist_ok=True)
    log_path = os.path.join(args.results, f"{stamp}.log")
    fs_dirs = {"tmpfs": args.tmpfs_dir, "disk": args.disk_dir}
    filesystems = [f for f in args.fs.split(",") if f]
    roots = {fs: os.path.join(fs_dirs[fs], f"pdbench-{stamp}-{os.getpid()}") for fs in filesystems}
    for root in roots.values():
        os.makedirs(root)
    pg_problem = postgres_available(args.postgres)
    meta = {
        "started_at": stamp,
        "mode": "quick" if args.quick else "full",
        "reps": reps,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg(),
        "filesystems": {fs: fs_dirs[fs] for fs in filesystems},
        "postgres": pg_problem or args.postgres,
        "versions": report.package_versions(),
        "library": os.path.abspath(args.library) if args.library else "this checkout",
        "params": {w: settings[w] for w in workloads},
    }

    runs: List[Dict] = []
    with ExitStack() as stack:
        env: Dict = {"pg_url": args.postgres}
        needs_s3 = any(
            s in plan.NEEDS_S3 for w in workloads for s in plan.SUBJECTS[w] if not only_subjects or s in only_subjects
        )
        if needs_s3:
            port = free_port()
            stack.enter_context(
                process(
                    [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                    port,
                    "moto server",
                    log_path,
                )
            )
            env["s3_endpoint"] = f"http://127.0.0.1:{port}"
        hosted_urls = {}
        if "hosted" in workloads:
            for fs, root in roots.items():
                hosted_root = os.path.join(root, "hosted")
                os.makedirs(hosted_root)
                # One server process per subject: what one subject allocates (glibc adapts
                # its mmap threshold to 1 MiB buffers, say) must not speed up or slow down
                # the other.
                for server_subject in plan.HOSTED_SERVERS:
                    port = free_port()
                    stack.enter_context(
                        process(
                            [sys.executable, "-m", "pdbench.hosted_app", "--root", hosted_root, "--port", str(port)],
                            port,
                            f"{server_subject} server on {fs}",
                            log_path,
                        )
                    )
                    hosted_urls[fs, server_subject] = (f"http://127.0.0.1:{port}", hosted_root)

        cases = []
        for workload in workloads:
            for subject in plan.SUBJECTS[workload]:
                if only_subjects and subject not in only_subjects:
                    continue
                for fs in [None] if subject in plan.NON_LOCAL else filesystems:
                    cases.append((workload, subject, fs))
        total = len(cases) * reps
        done = 0
        for rep in range(reps):
            # Every other repetition runs the cases in reverse, so no subject always runs
            # right after the same neighbour (or always first after a heavy case).
            for workload, subject, fs in cases if rep % 2 == 0 else cases[::-1]:
                done += 1
                case = {"workload": workload, "subject": subject, "fs": fs, "rep": rep}
                if subject in plan.NEEDS_POSTGRES and pg_problem:
                    result = {"unsupported": pg_problem}
                else:
                    case_env = dict(env, fs_root=roots[fs] if fs else roots[filesystems[0]])
                    if workload == "hosted":
                        server = subject if subject in plan.HOSTED_SERVERS else plan.HOSTED_SERVERS[0]
                        case_env["hosted_url"], case_env["hosted_root"] = hosted_urls[fs, server]
                    spec = {"workload": workload, "subject": subject, "fs": fs, "env": case_env}
                    spec["params"] = dict(settings[workload])
                    if workload == "small" and subject in plan.NEEDS_S3:
                        spec["params"]["count"] = settings["small"]["s3_count"]
                    if workload == "range" and subject in plan.NEEDS_S3:
                        spec["params"]["item_size"] = settings["range"]["s3_item_size"]
                    result = run_case(spec, args.timeout, log_path)
                status = result.get("error") or result.get("unsupported") or "ok"
                sys.stderr.write(
                    f"[{done}/{total}] {workload:6} {subject:20} {fs or '-':5} rep {rep + 1}: {status}"
                    f" ({result.get('_seconds', 0):.1f}s, load {result.get('_load_before', 0):.1f},"
                    f" waited {result.get('_quiesce_s', 0):.1f}s for quiet)\n"
                )
                sys.stderr.flush()
                runs.append(dict(case, result=result))
    for root in roots.values():
        shutil.rmtree(root, ignore_errors=True)

    meta["load_after"] = os.getloadavg()
    measured = {w: settings[w] for w in workloads}
    summary = report.summarize(runs, measured, filesystems)
    targets = report.evaluate_targets(summary, measured, filesystems)
    text = report.render(summary, targets, meta)
    print(text)
    path = os.path.join(args.results, f"{stamp}.json")
    with open(path, "w") as file:
        tables = {k: v for k, v in summary.items() if not k.startswith("_")}
        json.dump({"meta": meta, "runs": runs, "summary": tables, "targets": targets}, file, indent=1)
    with open(os.path.join(args.results, f"{stamp}.txt"), "w") as file:
        file.write(text + "\n")
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
