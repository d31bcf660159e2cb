"""
DirectoryDataStore in sidecar mode (xattrs=False): metadata always describes the content
it sits beside, however writers race (threads and processes), and a refused write
leaves nothing behind.
"""

import multiprocessing
import os
import threading

import pytest

from persisty_data.directory.directory_data_store import DirectoryDataStore
from persisty_data.errors import ContentChangedError, InvalidKeyError, KeyConflictError

WRITERS = 8
ROUNDS = 25
KEY = "shared/item.bin"


def _content(writer: int, round_number: int) -> bytes:
    # Sizes differ per write, so a sidecar describing another write is noticed by size too.
    return f"writer-{writer}:".encode() + b"x" * (writer * 97 + round_number)


def _content_type(writer: int) -> str:
    return f"application/x-writer-{writer}"


def _writer_of_bytes(data: bytes) -> int:
    return int(data.split(b":", 1)[0].split(b"-")[1])


def _write_rounds(root: str, writer: int, start: "threading.Barrier | None" = None) -> None:
    store = DirectoryDataStore(root, xattrs=False, fsync=False)
    if start is not None:
        start.wait()
    for round_number in range(ROUNDS):
        data = _content(writer, round_number)
        if round_number % 2:
            store.write_bytes(KEY, data, _content_type(writer))
        else:
            with store.get_data_writer(KEY, _content_type(writer)) as stream:
                stream.write(data)


def _check_reads(store: DirectoryDataStore, done: threading.Event, mismatches: list, reads: list) -> None:
    while not done.is_set():
        item = store.read(KEY)
        if item is None:
            continue
        try:
            data = item.read_bytes()
        except ContentChangedError:
            continue  # replaced between the read and the bytes: not a mix
        reads.append(1)
        if item.content_type != _content_type(_writer_of_bytes(data)):
            mismatches.append((item.content_type, data[:12]))


def _files_under(directory: str):
    return sorted(
        os.path.relpath(os.path.join(folder, name), directory)
        for folder, _, names in os.walk(directory)
        for name in names
    )


@pytest.fixture
def root(tmp_path):
    return str(tmp_path / "root")


def _assert_settled(root: str) -> None:
    store = DirectoryDataStore(root, xattrs=False)
    item = store.read(KEY)
    data = item.read_bytes()
    assert item.content_type == _content_type(_writer_of_bytes(data))
    assert len(_files_under(store._sidecar_dir)) == 1  # exactly the winner's sidecar
    assert os.listdir(store._temp_dir) == []


def test_racing_threads_never_mix_content_and_content_type(root):
    reader_store = DirectoryDataStore(root, xattrs=False, fsync=False)
    start = threading.Barrier(WRITERS)
    done = threading.Event()
    mismatches: list = []
    reads: list = []
    reader = threading.Thread(target=_check_reads, args=(reader_store, done, mismatches, reads))
    reader.start()
    writers = [threading.Thread(target=_write_rounds, args=(root, i, start)) for i in range(WRITERS)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    reader.join()
    assert mismatches == []
    _assert_settled(root)


def test_racing_processes_never_mix_content_and_content_type(root):
    DirectoryDataStore(root, xattrs=False)
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_write_rounds, args=(root, i)) for i in range(WRITERS)]
    for process in processes:
        process.start()
    reader_store = DirectoryDataStore(root, xattrs=False, fsync=False)
    done = threading.Event()
    mismatches: list = []
    reads: list = []
    reader = threading.Thread(target=_check_reads, args=(reader_store, done, mismatches, reads))
    reader.start()
    for process in processes:
        process.join(timeout=120)
    done.set()
    reader.join()
    assert [p.exitcode for p in processes] == [0] * WRITERS
    assert mismatches == []
    _assert_settled(root)


class TestRefusedWritesLeaveNothing:
    @pytest.fixture
    def store(self, root):
        return DirectoryDataStore(root, xattrs=False)

    def _internal_files(self, store):
        return _files_under(store._internal_dir)

    def test_a_key_taken_by_a_directory(self, store):
        store.write_bytes("a/b", b"below")
        before = self._internal_files(store)
        for _ in range(3):
            with pytest.raises(KeyConflictError):
                store.write_bytes("a", b"small")
            with pytest.raises(KeyConflictError):
                store.write_bytes("a", b"large" * 100_000)  # the streaming writer
        assert self._internal_files(store) == before

    def test_a_directory_appearing_while_writing(self, store):
        writer = store.get_data_writer("late", "text/plain")
        writer.write(b"content")
        store.write_bytes("late/inner", b"x")
        before = [f for f in self._internal_files(store) if not f.startswith("tmp/")]  # not the writer's
        with pytest.raises(KeyConflictError):
            writer.close()
        assert self._internal_files(store) == before
        assert store.read("late/inner").read_bytes() == b"x"

    def test_a_symlink_out_of_the_root(self, store, root, tmp_path):
        outside = tmp_path / "outside"
        outside.mkdir()
        os.symlink(str(outside), os.path.join(root, "link"))
        for data in (b"small", b"large" * 100_000):
            with pytest.raises(InvalidKeyError):
                store.write_bytes("link/escaped", data)
        assert self._internal_files(store) == []
        assert list(outside.iterdir()) == []
