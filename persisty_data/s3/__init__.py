"""
S3DataStore: items as objects in one S3 bucket (AWS or any S3-compatible endpoint).

Needs the ``s3`` extra (boto3); nothing outside this package imports boto3 or botocore.
"""

try:
    import boto3  # noqa: F401
    import botocore  # noqa: F401
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
    raise ModuleNotFoundError(
        f"persisty_data.s3 needs boto3 ({exc}): pip install 'persisty-data[s3]'", name=exc.name
    ) from exc
