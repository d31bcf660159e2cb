"""
S3DataStore: items as objects in one S3 bucket (AWS or any S3-compatible endpoint).

Needs the ``s3`` extra (boto3); nothing outside this package imports boto3 or botocore.
"""
