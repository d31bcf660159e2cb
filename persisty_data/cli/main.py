"""
``persisty-data``: list, upload, download, copy, delete and verify items of the configured
data stores, sign download URLs and upload forms, and serve hosted stores over HTTP.

Exit status: 0 on success, 1 on failure (missing item, bad configuration, storage
error...), 2 on a usage error or a missing dependency, 130 when interrupted.

Nothing here imports persisty at module level: PERSISTY_SECRET_KEY must be set first
(see _give_persisty_a_key).
"""

import argparse
import logging
import os
import secrets
import sys
from datetime import timedelta
from typing import List, Optional

from persisty_data import __version__
from persisty_data.extras import extra_for, missing_module, needs_module_message

PROG = "persisty-data"
PERSISTY_SECRET_KEY = "PERSISTY_SECRET_KEY"

DESCRIPTION = """\
Work with the data stores of a persisty-data configuration.

Items are addressed as STORE:KEY (STORE: or STORE:folder/ is a prefix). Any other
operand is a local path ('./name:x' for a local file whose name has a colon), and '-'
is stdin or stdout.

The configuration is the file given by --config, else by PERSISTY_DATA_CONFIG, else
./persisty-data.toml, plus PERSISTY_DATA_* environment variables (docs/configuration.md).
"""

EPILOG = """\
examples:
  persisty-data ls                              # the configured stores
  persisty-data ls files:reports/ -l            # items under a prefix, long format
  persisty-data put a.png b.png files:images/   # -> images/a.png, images/b.png
  tar c docs | persisty-data put - files:backup/docs.tar
  persisty-data get files:images/a.png -        # to stdout
  persisty-data cp files:images/a.png archive:  # between stores, server side if possible
  persisty-data verify files reports/            # keys of corrupt items, exit 1 if any
  persisty-data url files:images/a.png --expires 600
  persisty-data form files:inbox/new.pdf --content-type application/pdf
  persisty-data gc files --older-than 2h --dry-run
  persisty-data serve --port 8000
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _expiry(text: str) -> int:
    from persisty_data.config._settings import MAX_EXPIRY_SECONDS

    value = _positive_int(text)
    if value > MAX_EXPIRY_SECONDS:
        raise argparse.ArgumentTypeError(f"at most {MAX_EXPIRY_SECONDS} seconds (7 days), got {value}")
    return value


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> timedelta:
    """30s, 30m, 2h, 7d: a whole number and one unit."""
    number, unit = text[:-1], text[-1:].lower()
    if unit not in _DURATION_UNITS or not number.isdigit():
        raise argparse.ArgumentTypeError(f"not a duration (like 30m, 2h or 7d): {text!r}")
    try:
        return timedelta(seconds=int(number) * _DURATION_UNITS[unit])
    except OverflowError:
        raise argparse.ArgumentTypeError(f"too long a duration: {text!r}") from None


def _content_type(text: str) -> str:
    """Parsed before any store is opened: a bad type is a usage error, nothing is written."""
    from persisty_data.content_types import normalize_content_type
    from persisty_data.errors import MalformedContentTypeError

    try:
        return normalize_content_type(text)
    except MalformedContentTypeError:
        raise argparse.ArgumentTypeError(f"not a content type (type/subtype[; name=value]...): {text!r}") from None


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0 to 65535, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", metavar="FILE", help="the TOML configuration file")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    # --config is accepted after the subcommand too; SUPPRESS keeps a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help="the TOML configuration file")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help: str, description: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help,
            description=description,
            parents=[common],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(parser=sub)
        return sub

    ls = add(
        "ls",
        "list the configured stores, or the items of a store",
        "Without STORE, list the configured stores (name, backend, factory, policy).\n"
        "With STORE[:PREFIX], list the keys of its items (under PREFIX), one page at a\n"
        "time: when there are more, the next page's key goes to stderr as\n"
        "'next page: --page-key K'. --all lists everything.",
    )
    ls.add_argument("target", nargs="?", metavar="STORE[:PREFIX]")
    ls.add_argument("-l", "--long", action="store_true", help="size, content type, updated at, etag[:12], key")
    ls.add_argument("--limit", type=_positive_int, metavar="N", help="items per page (default: the store's max)")
    ls.add_argument("--page-key", metavar="K", help="continue after a previous page")
    ls.add_argument("--all", dest="all_", action="store_true", help="list every item, page after page")

    put = add(
        "put",
        "upload local files (or stdin) into a store",
        "Upload FILE to STORE:KEY, or several FILEs into STORE:PREFIX/ (each under its\n"
        "base name). '-' reads stdin (needs a full key). The content type is guessed\n"
        "from the key unless given. An item is replaced in one step, only once all its\n"
        "bytes are in.",
    )
    put.add_argument("files", nargs="+", metavar="FILE")
    put.add_argument("destination", metavar="STORE:KEY_OR_PREFIX/")
    put.add_argument("--content-type", type=_content_type, metavar="T", help="the content type of every file")

    get = add(
        "get",
        "download an item to a file or stdout",
        "Download STORE:KEY to FILE (default: the key's base name in the current\n"
        "directory; into a directory: under the key's base name), or to stdout with '-'.\n"
        "A local file is written under a temporary name and renamed when complete.",
    )
    get.add_argument("source", metavar="STORE:KEY")
    get.add_argument("destination", nargs="?", metavar="FILE|-")

    rm = add(
        "rm",
        "delete items",
        "Delete each STORE:KEY. Missing items are reported and make the exit status 1,\nunless --force.",
    )
    rm.add_argument("items", nargs="+", metavar="STORE:KEY")
    rm.add_argument("-f", "--force", action="store_true", help="ignore missing items")

    cp = add(
        "cp",
        "copy an item between stores, or between a store and a local file",
        "Copy SRC to DST, each STORE:KEY or a local path ('-': stdin / stdout). Within\n"
        "a store or between stores the backends' own copy is used where there is one\n"
        "(S3 server-side copy, OS copy), else the bytes are streamed. DST ending in '/'\n"
        "(or STORE:) is a prefix: the item keeps its base name. local -> store is put,\n"
        "store -> local is get.",
    )
    cp.add_argument("source", metavar="SRC")
    cp.add_argument("destination", metavar="DST")
    cp.add_argument(
        "--content-type", type=_content_type, metavar="T", help="the copy's content type (default: the source's)"
    )

    verify = add(
        "verify",
        "read every item in full and report those whose content is corrupt",
        "Read every item of STORE (under PREFIX) to the end, checking each against its\n"
        "etag (SHA-256). The key of each corrupt item goes to stdout, why to stderr,\n"
        "then a summary. Exit status 1 if any item is corrupt.",
    )
    verify.add_argument("target", metavar="STORE[:PREFIX]")
    verify.add_argument("prefix", nargs="?", metavar="PREFIX")

    url = add(
        "url",
        "print a signed download URL",
        "Print a download URL for STORE:KEY, signed by the store's factory (S3: a SigV4\n"
        "presigned GET; hosted: the app's HMAC signature, served by 'persisty-data serve'\n"
        "or the app). The CLI signs with the configured credentials and secret, so the\n"
        "store's policy for callers does not apply; its limits do.",
    )
    url.add_argument("item", metavar="STORE:KEY")
    url.add_argument("--expires", type=_expiry, metavar="SECONDS", help="default: the store's download_expiry")

    form = add(
        "form",
        "print a signed upload form as JSON",
        "Print the upload form for STORE:KEY as JSON: post its fields, then the file as\n"
        "the part named file_param, as multipart/form-data to url. On a terminal, a\n"
        "ready-to-run curl command line goes to stderr too.",
    )
    form.add_argument("item", metavar="STORE:KEY")
    form.add_argument(
        "--content-type", type=_content_type, metavar="T", help="bound into the form (default: guessed from the key)"
    )
    form.add_argument("--expires", type=_expiry, metavar="SECONDS", help="default: the store's upload_expiry")

    gc = add(
        "gc",
        "remove the debris crashed writes left in a store",
        "Remove from STORE what writers that died left behind, once older than\n"
        "DURATION: temp files and orphan sidecars (directory), chunks of uploads whose\n"
        "lease expired (chunk), unfinished multipart uploads and temporary keys (S3).\n"
        "A write that has been silent for longer than DURATION loses its upload (its\n"
        "close then fails): pick a DURATION well above the longest write. Prints one\n"
        "line per piece (kind, bytes, name) and a total.",
    )
    gc.add_argument("store", metavar="STORE")
    gc.add_argument("--older-than", type=_duration, required=True, metavar="DURATION", help="e.g. 30m, 2h, 7d")
    gc.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")

    serve = add(
        "serve",
        "serve the stores over HTTP",
        "Serve GET /health, the upload / download routes of every hosted store\n"
        "(POST {path_prefix}/{store}, GET {path_prefix}/{store}/{key}) and, unless\n"
        "--no-actions, every store's servey actions under /actions (authorized by a\n"
        "Bearer JWT signed with JWT_SECRET_KEY). Binds 127.0.0.1 unless --host says\n"
        "otherwise.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    serve.add_argument("--port", type=_port, default=8000, help="default: 8000")
    serve.add_argument(
        "--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"), help="default: info"
    )
    serve.add_argument("--no-actions", dest="actions", action="store_false", help="only /health and the hosted routes")
    return parser


def _run(args: argparse.Namespace) -> int:
    from persisty_data.cli import commands

    ctx = commands.Context(args.config)
    if args.command == "ls":
        return commands.ls(ctx, args.target, args.long, args.limit, args.page_key, args.all_)
    if args.command == "put":
        return commands.put(ctx, args.files, args.destination, args.content_type)
    if args.command == "get":
        return commands.get(ctx, args.source, args.destination)
    if args.command == "rm":
        return commands.rm(ctx, args.items, args.force)
    if args.command == "cp":
        return commands.cp(ctx, args.source, args.destination, args.content_type)
    if args.command == "verify":
        return commands.verify(ctx, args.target, args.prefix)
    if args.command == "url":
        return commands.url(ctx, args.item, args.expires)
    if args.command == "form":
        return commands.form(ctx, args.item, args.content_type, args.expires)
    if args.command == "gc":
        return commands.gc(ctx, args.store, args.older_than, args.dry_run)
    if args.command == "serve":
        from persisty_data.cli.server import require_server_modules, serve

        require_server_modules()
        serve(ctx.config, args.host, args.port, args.log_level, args.actions)
        return 0
    raise AssertionError(f"unknown command {args.command!r}")


def _error(message: str) -> None:
    sys.stderr.write(f"{PROG}: {message}\n")
    sys.stderr.flush()


def _silence_stdout() -> None:
    """After a closed pipe (e.g. '| head'), keep Python from failing again when it flushes stdout."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


class _LogFormatter(logging.Formatter):
    """Warnings (e.g. a development secret) read like our errors: ``persisty-data: warning: ...``."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{PROG}: {record.levelname.lower()}: {record.getMessage()}"


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogFormatter())
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(handler)
        root.setLevel(logging.WARNING)


def _give_persisty_a_key() -> None:
    """
    persisty encrypts its own page keys with PERSISTY_SECRET_KEY; when the variable is
    unset it warns on stderr as it is imported and falls back to a fixed, public key. The
    CLI keeps none of persisty's page keys (ours are not encrypted, so `ls --page-key`
    works across runs), so a random key for this process is all it needs: a user who
    pipes `get KEY -` into another program expects nothing on stderr.
    """
    if not os.environ.get(PERSISTY_SECRET_KEY):
        os.environ[PERSISTY_SECRET_KEY] = secrets.token_hex(16)  # 32 bytes: an AES-256 key


def missing_dependency_message(command: str, exc: ImportError) -> str:
    """One line that names the module that is missing and the extra that installs it."""
    extra = extra_for(exc)
    if extra is None:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"{command}: a dependency failed to import: {detail}"
    return needs_module_message(command, missing_module(exc), extra)


def main(argv: Optional[List[str]] = None) -> int:
    """The console script: returns the exit status."""
    _give_persisty_a_key()
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        _configure_logging()
        if args.command is None:
            parser.print_usage(sys.stderr)
            _error("a command is required (see --help)")
            return 2
        from persisty.errors import PersistyError

        from persisty_data.cli.commands import CliError, UsageError

        try:
            return _run(args)
        except ImportError as exc:  # an optional dependency a store or serve needs
            _error(missing_dependency_message(args.command, exc))
            return 2
        except UsageError as exc:
            args.parser.print_usage(sys.stderr)
            _error(f"{args.command}: {exc}")
            return 2
        except (CliError, PersistyError) as exc:
            _error(str(exc))
            return 1
        except BrokenPipeError:
            _silence_stdout()
            return 1
        except OSError as exc:  # local files: missing, unreadable, disk full...
            _error(f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc))
            return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
