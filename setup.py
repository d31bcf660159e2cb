import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read_version() -> str:
    with open(os.path.join(HERE, "persisty_data", "__init__.py"), encoding="utf-8") as f:
        match = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', f.read(), re.MULTILINE)
    if not match:
        raise RuntimeError("__version__ not found in persisty_data/__init__.py")
    return match.group(1)


def read_long_description() -> str:
    path = os.path.join(HERE, "README.md")
    if not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8") as f:
        return f.read()


# servey 3's marshy config imports strawberry whenever it is installed, and the import
# breaks from strawberry 0.236 (strawberry.field removed) and, for 0.235.x, with
# pydantic >= 2.11 (pydantic._internal._typing_extra.is_new_type removed). The base
# install pulls no strawberry; every extra that can pull it carries both pins.
STRAWBERRY = ["strawberry-graphql>=0.151,<0.236", "pydantic<2.11"]

SQL = ["SQLAlchemy~=1.4"]  # persisty 0.0.17 fails updates on SQLAlchemy 2
POSTGRES = SQL + ["psycopg2-binary~=2.9"]
# servey registers its REST routes (/actions/*, /login, /openapi.json) only when it can
# import requests, and says nothing when it cannot. python_multipart (the module name the
# hosted upload route imports) exists from python-multipart 0.0.13.
SERVER = [
    "starlette>=0.27,<1",
    "uvicorn>=0.23",
    "python-multipart>=0.0.13",
    "requests>=2.25",
] + STRAWBERRY
S3 = ["boto3>=1.26"]
DEV = (
    POSTGRES
    + SERVER
    + S3
    + [
        # tests/s3_backends.py serves with MotoRequestHandler (5.2); 5.2.6 changed how IAM
        # policies are checked, so a new minor release is taken on purpose, not by chance.
        "moto[server,s3]>=5.2,<5.3",
        "awscli",  # interop tests read what the S3 store wrote with the AWS CLI
        "pytest>=7",
        "pytest-timeout",
        "httpx",
        "ruff",
        "mypy",
        # Browser tests of the example app drive Debian's chromium (apt), never a
        # downloaded browser: do not run `playwright install`.
        "playwright",
    ]
)

setup(
    name="persisty-data",
    version=read_version(),
    description="Files of any size for persisty apps: directory and chunked storage",
    long_description=read_long_description(),
    long_description_content_type="text/markdown",
    license="MIT",
    # An explicit "" -> "." mapping makes `pip install -e .` put the project root on
    # sys.path (a static .pth) instead of an import hook: marshy and schemey find
    # marshy_config_* / schemey_config_* modules with pkgutil.iter_modules(), which
    # does not see modules served only by setuptools' editable finder.
    package_dir={"": "."},
    packages=find_packages(include=["persisty_data*", "marshy_config_persisty_data*", "schemey_config_persisty_data*"]),
    package_data={"persisty_data": ["py.typed"]},
    include_package_data=False,
    zip_safe=False,
    # Exactly the versions scripts/test runs; README "Python versions" says why not 3.9 or 3.13.
    python_requires=">=3.10,<3.13",
    install_requires=[
        "persisty~=0.0.17",
        "servey~=3.0",
        "marshy~=4.0",
        "schemey~=6.0",
        'tomli>=1.1; python_version < "3.11"',  # TOML configuration files (tomllib from 3.11)
    ],
    entry_points={"console_scripts": ["persisty-data = persisty_data.cli.main:main"]},
    extras_require={
        "sql": SQL,
        "postgres": POSTGRES,
        "server": SERVER,
        "s3": S3,
        "dev": DEV,
    },
    classifiers=[
        "License :: OSI Approved :: MIT License",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Operating System :: OS Independent",
        "Typing :: Typed",
    ],
)
