"""persisty-data: files of any size for persisty apps (directory, chunked, S3)."""

__version__ = "0.1.0"
