import os

# Before persisty is imported anywhere: a real page-key secret and no SQL echo.
os.environ.setdefault("PERSISTY_SECRET_KEY", "0123456789abcdef0123456789abcdef")
os.environ["SQL_ECHO"] = "0"
os.environ.pop("AWS_REGION", None)  # would switch persisty's default factory to DynamoDB

POSTGRES_URL = os.environ.get("PERSISTY_DATA_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
