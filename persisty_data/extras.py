"""
The optional dependencies of persisty-data: which extra (setup.py ``extras_require``)
installs each optional top-level module, and the one message that names the extra when
an import fails. The package's lazy names (persisty_data/__init__.py) and the CLI both
read this table.

Imports nothing: ``import persisty_data`` stays cheap.
"""

from typing import Optional

EXTRA_OF_MODULE = {
    "sqlalchemy": "sql",
    "psycopg2": "postgres",
    "boto3": "s3",
    "botocore": "s3",
    "s3transfer": "s3",
    "starlette": "server",
    "uvicorn": "server",
    "python_multipart": "server",
    "multipart": "server",
    "requests": "server",
    "strawberry": "server",
}


def missing_module(exc: ImportError) -> str:
    """
    The top-level name of the module whose absence raised ``exc`` ('' when unknown). A
    backend that adds its own hint raises a new error from the original, so the cause
    may be the one that carries the name.
    """
    cause = exc.__cause__ if isinstance(exc.__cause__, ImportError) else None
    return (exc.name or (cause.name if cause is not None else None) or "").split(".")[0]


def extra_for(exc: ImportError) -> Optional[str]:
    """The extra that installs the module ``exc`` misses, or None if no extra does."""
    return EXTRA_OF_MODULE.get(missing_module(exc).lower())


def needs_module_message(what: str, module: str, extra: str) -> str:
    return (
        f"{what} needs the Python module {module!r}, which is not installed: install the {extra} extra"
        f" (in a persisty-data checkout: pip install '.[{extra}]')"
    )


def missing_extra_error(what: str, exc: ImportError) -> Optional[ModuleNotFoundError]:
    """
    An error that names the extra to install when ``exc`` comes from a missing optional
    module; None when no extra installs it (the original error is then the clearer one).
    """
    extra = extra_for(exc)
    if extra is None:
        return None
    module = missing_module(exc)
    return ModuleNotFoundError(needs_module_message(what, module, extra), name=module)
