"""What each ``persisty-data`` subcommand does (argument parsing is in persisty_data.cli.main)."""

import dataclasses
import json
import os
import shlex
import stat
import sys
import tempfile
import time
from datetime import timedelta
from typing import BinaryIO, Callable, Dict, List, Optional, Tuple

from persisty.search_filter.include_all import INCLUDE_ALL

from persisty_data.cli.locations import Location, parse_location
from persisty_data.cli.progress import Progress, format_size, is_terminal
from persisty_data.config.data_config import DataConfig, load_config
from persisty_data.data_item_abc import DataItemABC
from persisty_data.data_store_abc import DataStoreABC
from persisty_data.errors import ContentCorruptedError
from persisty_data.factory.data_store_factory_abc import DataStoreFactoryABC
from persisty_data.keys import validate_key
from persisty_data.search import KeyPrefixFilter
from persisty_data.upload_form import UploadForm
from persisty_data.verify import verify_store

BUFFER_SIZE = 1024 * 1024


class CliError(Exception):
    """A failure to report as ``persisty-data: <message>`` with exit status 1 (no traceback)."""


class UsageError(CliError):
    """Operands that do not fit the command: exit status 2, like argparse's own errors."""


class Context:
    """The configuration (loaded on first use) and the process's standard streams."""

    def __init__(self, config_path: Optional[str] = None):
        self.config_path = config_path
        self._config: Optional[DataConfig] = None

    @property
    def config(self) -> DataConfig:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def store(self, name: str) -> DataStoreABC:
        return self.config.get_store(name)

    def factory(self, name: str) -> DataStoreFactoryABC:
        return self.config.get_factory(name)

    @property
    def stdout(self) -> BinaryIO:
        return sys.stdout.buffer

    @property
    def stdin(self) -> BinaryIO:
        return sys.stdin.buffer


def _store_location(text: str, what: str) -> Location:
    location = parse_location(text)
    if not location.is_store:
        raise UsageError(f"{what} must be STORE:KEY, got {text!r}")
    return location


def _item_location(text: str, what: str) -> Location:
    location = _store_location(text, what)
    if location.is_prefix:
        raise UsageError(f"{what} must name one item (STORE:KEY), got {text!r}")
    validate_key(location.key)
    return location


def _basename(key_or_path: str) -> str:
    return key_or_path.rstrip("/").rsplit("/", 1)[-1] or key_or_path


def _copy(reader: BinaryIO, writer, progress: Progress) -> None:
    with progress:
        while True:
            data = reader.read(BUFFER_SIZE)
            if not data:
                break
            writer.write(data)
            progress.update(len(data))


def _not_found(location: Location) -> CliError:
    return CliError(f"not found: {location}")


# region: ls
def ls(ctx: Context, target: Optional[str], long: bool, limit: Optional[int], page_key: Optional[str], all_: bool):
    if target is None:
        return _list_stores(ctx)
    location = parse_location(target if ":" in target else target + ":")
    if not location.is_store:
        raise UsageError(f"ls takes STORE or STORE:PREFIX, got {target!r}")
    store = ctx.store(location.store)  # type: ignore[arg-type]
    search_filter = KeyPrefixFilter(location.key) if location.key else INCLUDE_ALL
    out = sys.stdout
    while True:
        page = store.search(search_filter, page_key=page_key, limit=limit)
        for item in page.results:
            out.write((_long_line(item) if long else item.key) + "\n")
        out.flush()
        page_key = page.next_page_key
        if not page_key:
            return 0
        if not all_:
            sys.stderr.write(f"next page: --page-key {shlex.quote(page_key)}\n")
            return 0


def _long_line(item: DataItemABC) -> str:
    updated_at = item.updated_at.isoformat(timespec="seconds")
    return f"{item.size:>12}  {item.content_type:<24}  {updated_at}  {item.etag[:12]}  {item.key}"


def _list_stores(ctx: Context) -> int:
    config = ctx.config
    rows = [(name, s.backend, s.factory, s.policy) for name, s in config.stores.items()]
    if not rows:
        raise CliError(
            "no stores are configured: pass --config FILE, set PERSISTY_DATA_CONFIG, or create ./persisty-data.toml"
        )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        sys.stdout.write("  ".join(v.ljust(w) for v, w in zip(row, widths)) + "  " + row[3] + "\n")
    return 0


# endregion


# region: put / get / rm
def put(ctx: Context, files: List[str], destination: str, content_type: Optional[str]) -> int:
    dest = _store_location(destination, "the destination")
    if len(files) > 1 and not dest.is_prefix:
        raise UsageError(f"several files go into a prefix ending in '/', got {destination!r}")
    if files.count("-") > 1:
        raise UsageError("stdin ('-') can be read only once")
    plan: List[Tuple[str, str]] = []
    for source in files:
        if source == "-" and dest.is_prefix:
            raise UsageError(f"stdin has no name: give a full key, not the prefix {destination!r}")
        # os.stat: a missing file fails here, before anything is uploaded
        if source != "-" and stat.S_ISDIR(os.stat(source).st_mode):
            raise CliError(f"{source}: is a directory (put uploads files)")
        plan.append((source, validate_key(dest.join(_basename(source)))))
    store = ctx.store(dest.store)  # type: ignore[arg-type]
    for source, key in plan:
        _put_one(ctx, store, source, key, content_type)
    return 0


def _put_one(ctx: Context, store: DataStoreABC, source: str, key: str, content_type: Optional[str]) -> None:
    if source == "-":
        _write_item(store, key, content_type, ctx.stdin, None, key)
        return
    with open(source, "rb") as file:
        _write_item(store, key, content_type, file, os.fstat(file.fileno()).st_size, key)


def _write_item(
    store: DataStoreABC,
    key: str,
    content_type: Optional[str],
    reader: BinaryIO,
    size: Optional[int],
    label: str,
) -> None:
    with store.get_data_writer(key, content_type) as writer:
        _copy(reader, writer, Progress(label, size))


def get(ctx: Context, source: str, destination: Optional[str]) -> int:
    location = _item_location(source, "the source")
    item = ctx.store(location.store).read(location.key)  # type: ignore[arg-type]
    if item is None:
        raise _not_found(location)
    _download(ctx, item, destination or _basename(location.key))
    return 0


def _download(ctx: Context, item: DataItemABC, destination: str) -> None:
    if destination == "-":
        out = ctx.stdout
        with item.get_data_reader() as reader:
            _copy(reader, out, Progress(item.key, item.size))
        out.flush()
        return
    if os.path.isdir(destination):
        destination = os.path.join(destination, _basename(item.key))
    elif destination.endswith(("/", os.sep)):
        raise CliError(f"{destination}: no such directory")
    _write_local_file(destination, lambda out: _read_item(item, out))


def _read_item(item: DataItemABC, out: BinaryIO) -> None:
    with item.get_data_reader() as reader:
        _copy(reader, out, Progress(item.key, item.size))


def _write_local_file(path: str, write: Callable[[BinaryIO], None]) -> None:
    """Write to a temporary file beside path, then rename it over path: no partial files."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CliError(f"{path}: no such directory: {folder}")
    fd, temp_path = tempfile.mkstemp(prefix=".persisty-data-", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
        os.chmod(temp_path, 0o666 & ~_umask())  # mkstemp makes 0600; a plain new file it is
        os.replace(temp_path, path)
    except BaseException:
        try:
            os.unlink(temp_path)
        except OSError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def rm(ctx: Context, items: List[str], force: bool) -> int:
    locations = [_item_location(text, "each item") for text in items]
    missing = []
    for location in locations:
        if not ctx.store(location.store).delete(location.key) and not force:  # type: ignore[arg-type]
            missing.append(location)
    for location in missing:
        sys.stderr.write(f"persisty-data: not found: {location}\n")
    return 1 if missing else 0


# endregion


# region: gc
def gc(ctx: Context, store_name: str, older_than: timedelta, dry_run: bool) -> int:
    name = store_name[:-1] if store_name.endswith(":") else store_name
    if not name or ":" in name:
        raise UsageError(f"gc works on a whole store (STORE), got {store_name!r}")
    report = ctx.store(name).gc(older_than, dry_run=dry_run)
    out = sys.stdout
    for debris in report.removed:
        size = "-" if debris.size_in_bytes is None else str(debris.size_in_bytes)
        out.write(f"{debris.kind}\t{size}\t{debris.name}\n")
    verb = "would remove" if dry_run else "removed"
    out.write(f"{verb} {report.count} piece(s) of debris, {report.size_in_bytes} bytes\n")
    out.flush()
    return 0


# endregion


# region: cp
def cp(ctx: Context, source: str, destination: str, content_type: Optional[str]) -> int:
    src, dst = parse_location(source), parse_location(destination)
    if not src.is_store and not dst.is_store:
        raise UsageError("cp needs STORE:KEY on at least one side (use your shell's cp for local files)")
    if not src.is_store:
        return put(ctx, [src.text], destination, content_type)
    if src.is_prefix:
        raise UsageError(f"cp copies one item: the source must be STORE:KEY, got {source!r}")
    validate_key(src.key)
    if not dst.is_store:
        if content_type:
            raise UsageError("--content-type applies only when copying into a store")
        return get(ctx, source, dst.text)
    key = validate_key(dst.join(_basename(src.key)))
    source_store = ctx.store(src.store)  # type: ignore[arg-type]
    target_store = ctx.store(dst.store)  # type: ignore[arg-type]
    with Progress(key, _size_for_progress(source_store, src.key)) as progress:
        copied = target_store.copy_data_from(source_store, src.key, key, content_type, progress=progress.update)
    if copied is None:
        raise _not_found(src)
    return 0


def _size_for_progress(store: DataStoreABC, key: str) -> Optional[int]:
    """The item's size when a progress bar may be drawn (stderr is a terminal): one more read."""
    if not is_terminal(sys.stderr):
        return None
    item = store.read(key)
    return item.size if item is not None else None


# endregion


# region: verify
def verify(ctx: Context, target: str, prefix: Optional[str]) -> int:
    location = parse_location(target if ":" in target else target + ":")
    if not location.is_store:
        raise UsageError(f"verify takes STORE [PREFIX] or STORE:PREFIX, got {target!r}")
    if location.key and prefix is not None:
        raise UsageError("give the prefix once: STORE PREFIX or STORE:PREFIX")
    prefix = location.key or prefix or ""
    store = ctx.store(location.store)  # type: ignore[arg-type]
    progress = _VerifyProgress(location.store)  # type: ignore[arg-type]
    report = verify_store(store, prefix, progress.on_item)
    progress.clear()
    items = f"{report.items} item" + ("" if report.items == 1 else "s")
    summary = f"{items} ({format_size(report.bytes)}) checked, {len(report.corrupt)} corrupt"
    sys.stderr.write(f"persisty-data: verify: {summary}\n")
    return 1 if report.corrupt else 0


class _VerifyProgress:
    """Each corrupt key on stdout (with why on stderr); a running count on a terminal's stderr."""

    def __init__(self, store_name: str, interval: float = 0.1):
        self.store_name = store_name
        self.interval = interval
        self.items = 0
        self.bytes = 0
        self.enabled = is_terminal(sys.stderr)
        self._drawn_at = 0.0

    def on_item(self, item: DataItemABC, error: Optional[ContentCorruptedError]) -> None:
        self.items += 1
        self.bytes += item.size
        if error is not None:
            self.clear()
            sys.stdout.write(item.key + "\n")
            sys.stdout.flush()
            sys.stderr.write(f"persisty-data: corrupt: {self.store_name}:{item.key}: {error.detail or error.code}\n")
        now = time.monotonic()
        if self.enabled and now - self._drawn_at >= self.interval:
            self._drawn_at = now
            sys.stderr.write(f"\rverifying {self.store_name}: {self.items} items, {format_size(self.bytes)}\x1b[K")
            sys.stderr.flush()

    def clear(self) -> None:
        if self.enabled and self._drawn_at:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self._drawn_at = 0.0


# endregion


# region: url / form
def _full_access(factory: DataStoreFactoryABC) -> DataStoreFactoryABC:
    """
    The factory under persisty's UNSECURED policy. The CLI already holds what signs
    (the hosted secret, the AWS credentials), so it signs any URL or form the store's
    own settings allow (key rules, content types, size limit, expiry), whatever the
    store's policy for callers is (even INTERNAL_ONLY).
    """
    from persisty.security.store_security import UNSECURED

    if dataclasses.is_dataclass(factory):
        return dataclasses.replace(factory, security=UNSECURED)
    return factory  # pragma: no cover - the configuration makes only dataclass factories


def _expire_in(seconds: Optional[int]) -> Optional[timedelta]:
    return timedelta(seconds=seconds) if seconds else None


def url(ctx: Context, target: str, expires: Optional[int]) -> int:
    location = _item_location(target, "the item")
    factory = _full_access(ctx.factory(location.store))  # type: ignore[arg-type]
    download_url = factory.get_download_url(location.key, None, _expire_in(expires))
    if download_url is None:
        raise _not_found(location)
    sys.stdout.write(download_url + "\n")
    _warn_if_relative(download_url, location)
    return 0


def form(ctx: Context, target: str, content_type: Optional[str], expires: Optional[int]) -> int:
    location = _item_location(target, "the item")
    factory = _full_access(ctx.factory(location.store))  # type: ignore[arg-type]
    upload_form = factory.get_upload_form(location.key, None, content_type, _expire_in(expires))
    if upload_form is None:  # pragma: no cover - UNSECURED lets every valid key through
        raise CliError(f"no upload form for {location}")
    sys.stdout.write(json.dumps(form_json(upload_form), indent=2) + "\n")
    _warn_if_relative(upload_form.url, location)
    if is_terminal(sys.stderr):
        file_name = _basename(location.key)
        if any(c in file_name for c in ',;"'):  # curl would read these as -F syntax
            file_name = "FILE"
        sys.stderr.write(curl_command(upload_form, file_name) + "\n")
    return 0


def form_json(upload_form: UploadForm) -> Dict:
    """The form as the servey ``<store>_upload_form`` action returns it."""
    return {
        "url": upload_form.url,
        "fields": [{"name": f.name, "value": f.value} for f in upload_form.fields],
        "expire_at": upload_form.expire_at.isoformat(),
        "method": upload_form.method,
        "file_param": upload_form.file_param,
    }


def curl_command(upload_form: UploadForm, file_name: str) -> str:
    """A curl command line that posts the form; --form-string sends values verbatim (no @file)."""
    parts = ["curl", "-X", upload_form.method]
    for field in upload_form.fields:
        parts += ["--form-string", shlex.quote(f"{field.name}={field.value}")]
    parts += ["-F", shlex.quote(f"{upload_form.file_param}=@{file_name}"), shlex.quote(upload_form.url)]
    return " ".join(parts)


def _warn_if_relative(address: str, location: Location) -> None:
    if address.startswith("/"):
        sys.stderr.write(
            f"persisty-data: note: a relative URL; set base_url for store {location.store} to get a full one\n"
        )


# endregion
