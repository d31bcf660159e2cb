"""
The package's public face: ``from persisty_data import ...`` for every public name, at
no import cost until a name is used, and a missing extra named when a name needs one.
Import state is process-wide, so each check that looks at sys.modules runs in a fresh
interpreter.
"""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import pytest

import persisty_data
from persisty_data import ChunkDataStore, SqlStoreFactory

ROOT = Path(__file__).resolve().parent.parent
# The names that need an extra, and the extra; every other public name needs none.
EXTRA_NAMES = {
    "SqlStoreFactory": "sql",
    "S3DataStore": "s3",
    "S3DataStoreFactory": "s3",
    "DataStoreRoutes": "server",
    "DataErrorMiddleware": "server",
}
OPTIONAL_MODULES = ("sqlalchemy", "psycopg2", "boto3", "botocore", "starlette", "uvicorn", "requests", "strawberry")
CORE_NAMES = [name for name in persisty_data.__all__ if name not in EXTRA_NAMES and name != "__version__"]


def run_python(code: str, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", code]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


def loaded_after(code: str) -> List[str]:
    """The optional modules loaded once ``code`` has run in a fresh interpreter."""
    probe = f"import json, sys\n{code}\nprint(json.dumps([m for m in {OPTIONAL_MODULES!r} if m in sys.modules]))"
    result = run_python(probe)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


# region: every name
def test_every_name_in_all_resolves():
    for name in persisty_data.__all__:
        assert getattr(persisty_data, name) is not None, name
    assert set(persisty_data.__all__) <= set(dir(persisty_data))
    assert set(EXTRA_NAMES) <= set(persisty_data.__all__)


def test_the_names_the_readme_promises_are_public():
    promised = {
        "DataStoreABC",
        "DataItemABC",
        "DataWriterABC",
        "DirectoryDataStore",
        "ChunkDataStore",
        "SqlStoreFactory",
        "S3DataStore",
        "S3DataStoreFactory",
        "HostedDataStoreFactory",
        "DataStoreFactoryABC",
        "RestrictAccessDataStore",
        "OwnedDataStoreSecurity",
        "load_config",
        "verify_store",
        "PersistyDataError",
        "ContentCorruptedError",
        "UploadExpiredError",
    }
    assert promised <= set(persisty_data.__all__)


def test_every_error_class_is_public():
    from persisty_data import errors

    classes = {n for n, v in vars(errors).items() if isinstance(v, type) and issubclass(v, errors.PersistyDataError)}
    assert classes <= set(persisty_data.__all__)


def test_a_name_is_the_object_its_module_defines():
    from persisty_data.chunk.chunk_data_store import ChunkDataStore as Defined

    assert ChunkDataStore is Defined


def test_what_type_checkers_see_is_the_lazy_table():
    """The TYPE_CHECKING imports and the runtime table name the same objects."""
    tree = ast.parse((ROOT / "persisty_data" / "__init__.py").read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    seen = {alias.name: node.module for node in block.body if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert seen == {name: f"persisty_data.{module}" for name, module in persisty_data._LAZY.items()}


def test_an_unknown_name_is_an_attribute_error_and_submodules_still_import():
    with pytest.raises(AttributeError, match="no_such_name"):
        persisty_data.no_such_name  # noqa: B018
    with pytest.raises(ImportError, match="no_such_name"):
        from persisty_data import no_such_name  # noqa: F401
    from persisty_data import search

    assert search.KeyPrefixFilter is persisty_data.KeyPrefixFilter


# endregion


# region: cost of importing
def test_importing_the_package_imports_nothing_and_says_nothing():
    """The CLI imports persisty_data before it gives persisty a secret key."""
    env = {k: v for k, v in os.environ.items() if k != "PERSISTY_SECRET_KEY"}
    code = "import sys; before = set(sys.modules); import persisty_data; print(sorted(set(sys.modules) - before))"
    result = run_python(code, env)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout == "['persisty_data']\n"


def test_core_names_import_no_optional_dependency():
    touch_all = f"import persisty_data\nfor name in {CORE_NAMES!r}: getattr(persisty_data, name)"
    assert loaded_after(touch_all) == []


def test_a_chunk_store_imports_sqlalchemy_only_with_a_sql_factory():
    assert loaded_after("import persisty_data.chunk.chunk_data_store") == []


def test_a_chunk_store_on_one_sql_engine_still_takes_the_sql_path(tmp_path):
    # No public reading of the path taken; _sql is what the one-transaction publish checks.
    store = ChunkDataStore("files", SqlStoreFactory(f"sqlite:///{tmp_path / 'chunks.db'}"))
    assert store._sql is True


@pytest.mark.parametrize("name", sorted(EXTRA_NAMES))
def test_a_name_with_an_extra_imports_it_when_touched(name):
    extra_modules = {"sql": "sqlalchemy", "s3": "boto3", "server": "starlette"}
    module = extra_modules[EXTRA_NAMES[name]]
    assert module not in loaded_after("import persisty_data")
    assert module in loaded_after(f"from persisty_data import {name}")


# endregion


# region: a missing extra
@pytest.mark.parametrize(
    "name, blocked",
    [
        ("SqlStoreFactory", "sqlalchemy"),
        ("S3DataStore", "boto3"),
        ("S3DataStoreFactory", "botocore"),
        ("DataStoreRoutes", "starlette"),
        ("DataErrorMiddleware", "starlette"),
    ],
)
def test_a_missing_extra_is_named(name, blocked):
    extra = EXTRA_NAMES[name]
    code = f"""
import sys
sys.modules[{blocked!r}] = None  # as if its package were not installed
import persisty_data
try:
    persisty_data.{name}
except ImportError as exc:
    print(type(exc).__name__, exc.name)
    print(exc)
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    kind, message = result.stdout.splitlines()
    assert kind == f"ModuleNotFoundError {blocked}"
    assert message == (
        f"persisty_data.{name} needs the Python module {blocked!r}, which is not installed:"
        f" install the {extra} extra (in a persisty-data checkout: pip install '.[{extra}]')"
    )


def test_a_missing_extra_leaves_the_core_names_working():
    code = f"""
import sys
for blocked in ("sqlalchemy", "boto3", "botocore", "starlette"):
    sys.modules[blocked] = None
import persisty_data
for name in {CORE_NAMES!r}:
    getattr(persisty_data, name)
print("ok")
"""
    result = run_python(code)
    assert result.returncode == 0 and result.stdout == "ok\n", result.stderr


# endregion
