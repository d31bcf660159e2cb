#!/usr/bin/env bash
# Regenerates the text profiles in bench/profiles (run from the repository root, after
# bash bench/run has created bench/.venv, py-spy included). BEFORE=/path/to/an/older/checkout
# adds the "-before" profiles of that checkout's persisty_data. The one-off scripts
# (*.py.txt) say in their first lines how to run them.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export PERSISTY_SECRET_KEY="${PERSISTY_SECRET_KEY:-pdbench-0123456789abcdef01234567}" SQL_ECHO=0
unset AWS_REGION

profile() {  # name phase subject [args...]
    local name=$1; shift
    $PY -m pdbench.profile "$@" --profiler cprofile --out "profiles/$name.txt" > /dev/null
    if [ -n "${BEFORE:-}" ]; then
        PYTHONPATH="$BEFORE" $PY -m pdbench.profile "$@" --profiler cprofile --out "profiles/$name-before.txt" > /dev/null
    fi
}

profile chunk-sqlite-small-write small-write chunk_sqlite --count 2000
profile chunk-sqlite-small-read small-read chunk_sqlite --count 2000
profile directory-small-write small-write directory_nofsync --count 3000
profile directory-small-read small-read directory_nofsync --count 3000
profile directory-small-delete small-delete directory_nofsync --count 3000
profile fsspec-small-write small-write fsspec_local --count 3000
profile directory-large-write-tmpfs large-write directory --size 256
profile chunk-sqlite-range range chunk_sqlite --size 256 --count 1000
$PY -m pdbench.spy upload --out profiles/hosted-upload.txt > /dev/null
$PY -m pdbench.spy bare-upload --out profiles/bare-upload.txt > /dev/null
$PY -m pdbench.spy upload-small --out profiles/hosted-upload-small.txt > /dev/null
if [ -n "${BEFORE:-}" ]; then
    PYTHONPATH="$BEFORE" $PY -m pdbench.spy upload --out profiles/hosted-upload-before.txt > /dev/null
fi
