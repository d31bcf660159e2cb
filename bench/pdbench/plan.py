"""Which cases run, with which sizes, and what each is compared with."""

from pdbench.content import KiB, MiB

FULL = {
    "reps": 3,
    "large": {"sizes": [1 * MiB, 64 * MiB, 512 * MiB]},
    # moto's server answers ~100 requests/s here, one connection per request: S3 cases use
    # fewer items (ops/s are still comparable within the S3 rows).
    "small": {"count": 10_000, "s3_count": 1_000, "size": 1 * KiB, "list_repeat": 3},
    # moto reads (and copies) a whole object for every ranged GET: S3 cases use a smaller
    # item, or one case would take minutes measuring moto.
    "range": {"item_size": 256 * MiB, "s3_item_size": 32 * MiB, "count": 1_000, "length": 4 * KiB},
    "hosted": {"size": 64 * MiB, "count": 1_000, "small_size": 10 * KiB},
}
QUICK = {
    "reps": 1,
    "large": {"sizes": [1 * MiB, 16 * MiB]},
    "small": {"count": 300, "s3_count": 50, "size": 1 * KiB, "list_repeat": 1},
    "range": {"item_size": 16 * MiB, "s3_item_size": 16 * MiB, "count": 100, "length": 4 * KiB},
    "hosted": {"size": 8 * MiB, "count": 100, "small_size": 10 * KiB},
}

LOCAL_FILES = ["directory", "fsspec_local", "remote_store_local", "genro_local", "raw_file"]
S3_SUBJECTS = ["s3", "boto3", "s3fs", "remote_store_s3"]

SUBJECTS = {
    "large": LOCAL_FILES
    + ["raw_file_sha256", "chunk_sqlite", "sqlite_blob", "chunk_postgres", "pg_blob"]
    + S3_SUBJECTS,
    "small": LOCAL_FILES[:1]
    + ["directory_nofsync"]
    + LOCAL_FILES[1:]
    + ["chunk_sqlite", "sqlite_blob", "chunk_postgres", "pg_blob"]
    + S3_SUBJECTS,
    "range": LOCAL_FILES + ["chunk_sqlite", "sqlite_blob", "chunk_postgres", "pg_blob"] + S3_SUBJECTS,
    "hosted": ["hosted", "bare_store", "bare", "direct"],
}
# Hosted subjects that get their own HTTP server process ("direct" runs in the worker).
HOSTED_SERVERS = ("hosted", "bare_store", "bare")
NON_LOCAL = {"chunk_postgres", "pg_blob"} | set(S3_SUBJECTS)
NEEDS_POSTGRES = {"chunk_postgres", "pg_blob"}
NEEDS_S3 = set(S3_SUBJECTS)

# The baseline each subject's figures are divided by (same filesystem for local cases).
_LOCAL = {"write": "raw_file_sha256", "read": "raw_file", "small": "raw_file", "range": "raw_file"}
_SQLITE = dict.fromkeys(("write", "read", "small", "range"), "sqlite_blob")
_PG = dict.fromkeys(("write", "read", "small", "range"), "pg_blob")
_S3 = dict.fromkeys(("write", "read", "small", "range"), "boto3")
BASELINES = {
    **{name: _LOCAL for name in LOCAL_FILES + ["directory_nofsync", "raw_file_sha256"]},
    "chunk_sqlite": _SQLITE,
    "sqlite_blob": _SQLITE,
    "chunk_postgres": _PG,
    "pg_blob": _PG,
    **{name: _S3 for name in S3_SUBJECTS},
    **{name: dict.fromkeys(("hosted",), "bare_store") for name in ("hosted", "bare_store", "bare", "direct")},
}
