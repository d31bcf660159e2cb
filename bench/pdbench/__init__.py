"""persisty-data benchmarks: run with `bash bench/run` (see bench/README.md)."""
