"""Medians, ratios to baselines, targets (met / not met), the printed table."""

import statistics
from importlib import metadata
from typing import Callable, Dict, List, Optional

from pdbench import plan
from pdbench.content import MiB

SERVER = "server"  # the 'filesystem' of cases that run against a server (PostgreSQL, moto)

PACKAGES = (
    "persisty-data",
    "persisty",
    "SQLAlchemy",
    "boto3",
    "botocore",
    "moto",
    "starlette",
    "uvicorn",
    "psycopg2-binary",
    "fsspec",
    "s3fs",
    "remote-store",
    "genro-storage",
)


def package_versions() -> Dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _median(values: List[float]) -> Optional[float]:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


class Runs:
    """Per-repetition results, by (workload, subject, fs)."""

    def __init__(self, runs: List[Dict]):
        self.by_case: Dict = {}
        for run in runs:
            fs = run["fs"] or SERVER
            self.by_case.setdefault((run["workload"], run["subject"], fs), {})[run["rep"]] = run["result"]

    def results(self, workload: str, subject: str, fs: str) -> Dict[int, Dict]:
        return self.by_case.get((workload, subject, fs), {})

    def status(self, workload: str, subject: str, fs: str) -> Optional[str]:
        """None if at least one repetition worked, else why not."""
        results = self.results(workload, subject, fs)
        if not results:
            return "not run"
        if any("error" not in r and "unsupported" not in r for r in results.values()):
            return None
        first = next(iter(results.values()))
        return first.get("unsupported") or f"failed: {first.get('error')}"

    def metric(self, workload: str, subject: str, fs: str, fn: Callable[[Dict], Optional[float]]) -> List[float]:
        values = []
        for result in self.results(workload, subject, fs).values():
            value = _safe(fn, result)
            if value is not None:
                values.append(value)
        return values

    def ratio(
        self, workload: str, subject: str, base: str, fs: str, fn: Callable[[Dict], Optional[float]], base_fs=None
    ) -> Optional[float]:
        """Median over repetitions of subject / base, each pair measured in the same repetition."""
        mine = self.results(workload, subject, fs)
        theirs = self.results(workload, base, base_fs or fs)
        ratios = []
        for rep, result in mine.items():
            a, b = _safe(fn, result), _safe(fn, theirs.get(rep, {}))
            if a is not None and b:
                ratios.append(a / b)
        return _median(ratios)


def _safe(fn, result: Dict) -> Optional[float]:
    if not result or "error" in result or "unsupported" in result:
        return None
    try:
        return fn(result)
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def _fs_list(subject: str, filesystems: List[str]) -> List[str]:
    return [SERVER] if subject in plan.NON_LOCAL else filesystems


# region: metric functions
def write_rate(size: int):
    return lambda r: None if "write_error" in r[str(size)] else size / 1e6 / r[str(size)]["write_s"]


def read_rate(size: int):
    return lambda r: None if "read_error" in r[str(size)] else size / 1e6 / r[str(size)]["read_s"]


def rss(size: int, phase: str):
    return lambda r: r[str(size)].get(f"{phase}_rss_growth") / MiB


def commit_seconds(size: int):
    return lambda r: r[str(size)].get("commit_s")


def ops(phase: str):
    return lambda r: r["count"] / r[f"{phase}_s"]


def latency(which: str, pct: str):
    return lambda r: r[f"{which}_latencies"][pct] * 1000


def speed_from_latency(which: str, pct: str):
    return lambda r: 1 / r[f"{which}_latencies"][pct]


HOSTED_BASE = "bare_store"  # the hosted targets' baseline: a plain endpoint on the same store


def hosted_rate(phase: str):
    def fn(r):
        if phase.endswith("large"):
            return r["size"] / 1e6 / r[f"{phase}_s"]
        return r["count"] / r[f"{phase}_s"]

    return fn


# endregion


def summarize(runs: List[Dict], settings: Dict, filesystems: List[str]) -> Dict:
    data = Runs(runs)
    summary: Dict = {"_runs": data}
    if "large" in settings:
        rows = []
        for size in settings["large"]["sizes"]:
            for subject in plan.SUBJECTS["large"]:
                for fs in _fs_list(subject, filesystems):
                    if not data.results("large", subject, fs):
                        continue
                    base = plan.BASELINES[subject]
                    rows.append(
                        {
                            "fs": fs,
                            "size": size,
                            "subject": subject,
                            "status": data.status("large", subject, fs),
                            "write_MBps": _median(data.metric("large", subject, fs, write_rate(size))),
                            "write_ratio": data.ratio("large", subject, base["write"], fs, write_rate(size)),
                            "write_base": base["write"],
                            "read_MBps": _median(data.metric("large", subject, fs, read_rate(size))),
                            "read_ratio": data.ratio("large", subject, base["read"], fs, read_rate(size)),
                            "read_base": base["read"],
                            "write_rss_MiB": _max(data.metric("large", subject, fs, rss(size, "write"))),
                            "read_rss_MiB": _max(data.metric("large", subject, fs, rss(size, "read"))),
                            "commit_s": _median(data.metric("large", subject, fs, commit_seconds(size))),
                        }
                    )
        summary["large"] = rows
    if "small" in settings:
        rows = []
        for subject in plan.SUBJECTS["small"]:
            for fs in _fs_list(subject, filesystems):
                if not data.results("small", subject, fs):
                    continue
                base = plan.BASELINES[subject]["small"]
                row = {"fs": fs, "subject": subject, "status": data.status("small", subject, fs), "base": base}
                for phase in ("write", "list", "read", "delete"):
                    row[f"{phase}_per_s"] = _median(data.metric("small", subject, fs, ops(phase)))
                    row[f"{phase}_ratio"] = data.ratio("small", subject, base, fs, ops(phase))
                rows.append(row)
        summary["small"] = rows
    if "range" in settings:
        rows = []
        for subject in plan.SUBJECTS["range"]:
            for fs in _fs_list(subject, filesystems):
                if not data.results("range", subject, fs):
                    continue
                base = plan.BASELINES[subject]["range"]
                row = {"fs": fs, "subject": subject, "status": data.status("range", subject, fs), "base": base}
                for which in ("range", "small"):
                    for pct in ("p50", "p90", "p99"):
                        row[f"{which}_{pct}_ms"] = _median(data.metric("range", subject, fs, latency(which, pct)))
                row["range_over_small_p50"] = _median(
                    data.metric(
                        "range",
                        subject,
                        fs,
                        lambda r: r["range_latencies"]["p50"] / r["small_latencies"]["p50"],
                    )
                )
                speed = speed_from_latency("range", "p50")
                row["range_p50_speed_ratio"] = data.ratio("range", subject, base, fs, speed)
                rows.append(row)
        summary["range"] = rows
    if "hosted" in settings:
        rows = []
        for subject in plan.SUBJECTS["hosted"]:
            for fs in filesystems:
                if not data.results("hosted", subject, fs):
                    continue
                base = HOSTED_BASE
                row = {"fs": fs, "subject": subject, "status": data.status("hosted", subject, fs), "base": base}
                for phase in ("upload_large", "download_large", "upload_small", "download_small"):
                    row[phase] = _median(data.metric("hosted", subject, fs, hosted_rate(phase)))
                    row[f"{phase}_ratio"] = data.ratio("hosted", subject, base, fs, hosted_rate(phase))
                rows.append(row)
        summary["hosted"] = rows
    return summary


def _max(values: List[float]) -> Optional[float]:
    return max(values) if values else None


# region: targets
def _target(name: str, value: Optional[float], threshold: float, op: str, detail: str = "") -> Dict:
    if value is None:
        met = None
    elif op == ">=":
        met = value >= threshold
    elif op == ">":
        met = value > threshold
    else:
        met = value <= threshold
    return {"target": name, "value": value, "op": op, "threshold": threshold, "met": met, "detail": detail}


def evaluate_targets(summary: Dict, settings: Dict, filesystems: List[str]) -> List[Dict]:
    data: Runs = summary["_runs"]
    targets = []
    if "large" in settings:
        sizes = settings["large"]["sizes"]
        for fs in filesystems:
            for size in sizes:
                label = f"{fs}, {size // MiB} MiB"
                targets.append(
                    _target(
                        f"directory write vs raw write+SHA-256+fsync loop ({label})",
                        data.ratio("large", "directory", "raw_file_sha256", fs, write_rate(size)),
                        0.9,
                        ">=",
                    )
                )
                targets.append(
                    _target(
                        f"directory write vs genro-storage local ({label})",
                        data.ratio("large", "directory", "genro_local", fs, write_rate(size)),
                        1.0,
                        ">",
                    )
                )
                targets.append(
                    _target(
                        f"directory read vs raw read ({label})",
                        data.ratio("large", "directory", "raw_file", fs, read_rate(size)),
                        0.9,
                        ">=",
                    )
                )
                for phase, fn in (("write", write_rate(size)), ("read", read_rate(size))):
                    targets.append(
                        _target(
                            f"chunk SQLite {phase} vs sqlite3 BLOB rows ({label})",
                            data.ratio("large", "chunk_sqlite", "sqlite_blob", fs, fn),
                            0.5,
                            ">=",
                        )
                    )
        for size in sizes:
            label = f"{size // MiB} MiB"
            targets.append(
                _target(
                    f"S3 write vs boto3 upload_fileobj ({label})",
                    data.ratio("large", "s3", "boto3", SERVER, write_rate(size)),
                    0.9,
                    ">=",
                )
            )
            targets.append(
                _target(
                    f"S3 read vs boto3 download_fileobj ({label})",
                    data.ratio("large", "s3", "boto3", SERVER, read_rate(size)),
                    1.0,
                    ">=",
                )
            )
        largest = max(sizes)
        note = "" if largest == 512 * MiB else " (quick mode: not the 512 MiB of the target)"
        for subject, limit in (("directory", 16), ("chunk_sqlite", 16), ("chunk_postgres", 16), ("s3", 64)):
            for fs in _fs_list(subject, filesystems):
                values = data.metric("large", subject, fs, rss(largest, "write")) + data.metric(
                    "large", subject, fs, rss(largest, "read")
                )
                targets.append(
                    _target(
                        f"peak RSS growth MiB, {subject}, {largest // MiB} MiB item ({fs}){note}",
                        max(values) if values else None,
                        limit,
                        "<=",
                        "worst of write and read, over all repetitions",
                    )
                )
    if "hosted" in settings:
        for fs in filesystems:
            for phase in ("upload_large", "download_large", "upload_small", "download_small"):
                targets.append(
                    _target(
                        f"hosted {phase.replace('_', ' ')} vs bare starlette endpoint on the store ({fs})",
                        data.ratio("hosted", "hosted", HOSTED_BASE, fs, hosted_rate(phase)),
                        0.7,
                        ">=",
                    )
                )
    if "small" in settings:
        for fs in filesystems:
            for phase in ("write", "list", "read", "delete"):
                targets.append(
                    _target(
                        f"small items: directory beats genro-storage, {phase} ({fs})",
                        data.ratio("small", "directory", "genro_local", fs, ops(phase)),
                        1.0,
                        ">",
                    )
                )
            targets.append(
                _target(
                    f"small items: directory list vs raw directory listing ({fs})",
                    data.ratio("small", "directory", "raw_file", fs, ops("list")),
                    0.5,
                    ">=",
                )
            )
            for phase in ("write", "list", "read", "delete"):
                targets.append(
                    _target(
                        f"small items: directory fsync=False beats fsspec local, {phase} ({fs})",
                        data.ratio("small", "directory_nofsync", "fsspec_local", fs, ops(phase)),
                        1.0,
                        ">",
                    )
                )
            targets.append(
                _target(
                    f"small items: chunk SQLite writes/s ({fs})",
                    _median(data.metric("small", "chunk_sqlite", fs, ops("write"))),
                    2000,
                    ">=",
                    "an absolute rate: depends on the machine",
                )
            )
    if "range" in settings:
        for subject in ("chunk_sqlite", "chunk_postgres"):
            for fs in _fs_list(subject, filesystems):
                targets.append(
                    _target(
                        f"range p50 (4 KiB of {settings['range']['item_size'] // MiB} MiB) / 4 KiB item p50,"
                        f" {subject} ({fs})",
                        _median(
                            data.metric(
                                "range",
                                subject,
                                fs,
                                lambda r: r["range_latencies"]["p50"] / r["small_latencies"]["p50"],
                            )
                        ),
                        3.0,
                        "<=",
                    )
                )
    return targets


# endregion


# region: rendering
def _f(value: Optional[float], digits: int = 0, suffix: str = "") -> str:
    if value is None:
        return "-"
    if digits == 0 and abs(value) >= 10:
        return f"{value:,.0f}{suffix}"
    return f"{value:.{max(digits, 2) if abs(value) < 10 else digits}f}{suffix}"


def _r(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _table(header: List[str], rows: List[List[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    lines = [
        "  ".join(str(c).ljust(w) if i < 3 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
        for r in [header] + rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render(summary: Dict, targets: List[Dict], meta: Dict) -> str:
    out = [
        f"persisty-data benchmark ({meta['mode']}, {meta['reps']} repetition(s), median of repetitions;"
        f" ratios are medians of per-repetition ratios to the baseline named)",
        f"python {meta['python']}, {meta['cpus']} CPUs, load average before {meta['load_before'][0]:.2f}"
        f" after {meta.get('load_after', [0])[0]:.2f}; filesystems: "
        + ", ".join(f"{k}={v}" for k, v in meta["filesystems"].items()),
    ]
    if "large" in summary:
        out.append("\n## Large items: streamed write, then full read verified by SHA-256 (MB/s = 10^6 B/s)")
        out.append(
            "baselines: local files -> write: raw_file_sha256, read: raw_file; chunk_sqlite -> sqlite_blob;"
            " chunk_postgres -> pg_blob; S3 -> boto3"
        )
        rows = []
        for row in summary["large"]:
            if row["status"]:
                rows.append([row["fs"], f"{row['size'] // MiB} MiB", row["subject"], row["status"]] + [""] * 6)
                continue
            rows.append(
                [
                    row["fs"],
                    f"{row['size'] // MiB} MiB",
                    row["subject"],
                    _f(row["write_MBps"]),
                    _r(row["write_ratio"]),
                    _f(row["read_MBps"]),
                    _r(row["read_ratio"]),
                    _f(row["write_rss_MiB"], 1),
                    _f(row["read_rss_MiB"], 1),
                    _f(row["commit_s"], 3),
                ]
            )
        out.append(
            _table(
                [
                    "fs",
                    "size",
                    "subject",
                    "write MB/s",
                    "x base",
                    "read MB/s",
                    "x base",
                    "RSS+ w MiB",
                    "RSS+ r MiB",
                    "close s",
                ],
                rows,
            )
        )
    if "small" in summary:
        out.append(
            f"\n## Many small items: {meta['params']['small']['count']:,} x 1 KiB (S3:"
            f" {meta['params']['small']['s3_count']:,}), ops/s per phase (list: items listed per second, with sizes)"
        )
        out.append(
            "baselines: local files -> raw_file; chunk_sqlite -> sqlite_blob; chunk_postgres -> pg_blob; S3 -> boto3"
        )
        rows = []
        for row in summary["small"]:
            if row["status"]:
                rows.append([row["fs"], row["subject"], row["base"], row["status"]] + [""] * 7)
                continue
            cells = [row["fs"], row["subject"], row["base"]]
            for phase in ("write", "list", "read", "delete"):
                cells += [_f(row[f"{phase}_per_s"]), _r(row[f"{phase}_ratio"])]
            rows.append(cells)
        out.append(
            _table(
                [
                    "fs",
                    "subject",
                    "base",
                    "write/s",
                    "x base",
                    "list/s",
                    "x base",
                    "read/s",
                    "x base",
                    "delete/s",
                    "x base",
                ],
                rows,
            )
        )
    if "range" in summary:
        out.append(
            f"\n## Range reads: open by key and read 4 KiB at a random offset of a"
            f" {meta['params']['range']['item_size'] // MiB} MiB item (S3:"
            f" {meta['params']['range']['s3_item_size'] // MiB} MiB), vs a whole 4 KiB item (latency ms)"
        )
        rows = []
        for row in summary["range"]:
            if row["status"]:
                rows.append([row["fs"], row["subject"], row["base"], row["status"]] + [""] * 7)
                continue
            rows.append(
                [
                    row["fs"],
                    row["subject"],
                    row["base"],
                    _f(row["range_p50_ms"], 3),
                    _f(row["range_p90_ms"], 3),
                    _f(row["range_p99_ms"], 3),
                    _f(row["small_p50_ms"], 3),
                    _f(row["small_p90_ms"], 3),
                    _f(row["small_p99_ms"], 3),
                    _r(row["range_over_small_p50"]),
                    _r(row["range_p50_speed_ratio"]),
                ]
            )
        out.append(
            _table(
                [
                    "fs",
                    "subject",
                    "base",
                    "range p50",
                    "p90",
                    "p99",
                    "item p50",
                    "p90",
                    "p99",
                    "range/item",
                    "speed x base",
                ],
                rows,
            )
        )
    if "hosted" in summary:
        out.append(
            "\n## Hosted HTTP (uvicorn, 127.0.0.1): signed form upload / signed URL download vs a bare starlette"
            " streaming endpoint on the same store (bare_store); bare = raw file I/O on the event loop, no store"
            " (a reference); direct = the same store in-process"
        )
        rows = []
        for row in summary["hosted"]:
            if row["status"]:
                rows.append([row["fs"], row["subject"], row["base"], row["status"]] + [""] * 7)
                continue
            cells = [row["fs"], row["subject"], row["base"]]
            for phase in ("upload_large", "download_large", "upload_small", "download_small"):
                cells += [_f(row[phase]), _r(row[f"{phase}_ratio"])]
            rows.append(cells)
        out.append(
            _table(
                [
                    "fs",
                    "subject",
                    "base",
                    "up MB/s",
                    "x base",
                    "down MB/s",
                    "x base",
                    "up/s",
                    "x base",
                    "down/s",
                    "x base",
                ],
                rows,
            )
        )
    if targets:
        out.append("\n## Targets")
        rows = []
        for t in targets:
            met = "n/a" if t["met"] is None else ("met" if t["met"] else "NOT MET")
            value = "-" if t["value"] is None else f"{t['value']:.2f}"
            rows.append([met, t["target"], f"{value} {t['op']} {t['threshold']:g}", t["detail"]])
        out.append("\n".join(f"{r[0]:8} {r[1]:88} {r[2]:16} {r[3]}" for r in rows))
        counts = [t["met"] for t in targets]
        out.append(f"\n{counts.count(True)} met, {counts.count(False)} not met, {counts.count(None)} not measured")
    return "\n".join(out)


# endregion
