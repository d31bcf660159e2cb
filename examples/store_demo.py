"""
A tour of persisty-data: the same operations on two stores.

- a DirectoryDataStore, which keeps items as files under examples/data/files
- a ChunkDataStore, which keeps items as fixed-size chunk rows in SQLite
  (examples/data/chunks.db)

Run it with `bash scripts/example`, or `python examples/store_demo.py` once
persisty-data[sql] is installed. Everything it writes is deleted again at the end.
"""

import os

# persisty encrypts page keys with this AES key (16, 24 or 32 bytes). Set it before
# persisty is imported; use a real secret in your app.
os.environ.setdefault("PERSISTY_SECRET_KEY", "demo-only-key-not-a-secret-32byt")

from persisty.attr.attr_filter import AttrFilter  # noqa: E402
from persisty.attr.attr_filter_op import AttrFilterOp  # noqa: E402

from persisty_data.chunk.chunk_data_store import ChunkDataStore  # noqa: E402
from persisty_data.chunk.sql_store_factory import SqlStoreFactory  # noqa: E402
from persisty_data.directory.directory_data_store import DirectoryDataStore  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
MIB = 1024 * 1024
# Not a real image: just a PNG signature and some bytes, to show content types.
FAKE_PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


HELLO = b"Hello from persisty-data!\n"
WRITTEN = ["docs/hello.txt", "images/logo.png", "docs/random.bin"]


def tour(title: str, store) -> None:
    print(f"\n=== {title} ===")

    print("Writing a text file, an image and a 1 MiB stream...")
    store.write_bytes("docs/hello.txt", HELLO)
    store.write_bytes("images/logo.png", FAKE_PNG, content_type="image/png")
    with store.get_data_writer("docs/random.bin") as writer:
        for _ in range(16):  # 16 x 64 KiB: content is streamed, never held in memory whole
            writer.write(os.urandom(64 * 1024))
    print(f"  streamed {writer.item.key}: {writer.item.size} bytes")

    print("All items:")
    for item in store.search_all():
        print(
            f"  {item.key:<16} {item.size:>8} bytes  {item.content_type:<24}"
            f"  etag {item.etag[:12]}  {item.updated_at:%Y-%m-%d %H:%M:%S} UTC"
        )

    docs = store.search_all(AttrFilter("key", AttrFilterOp.startswith, "docs/"))
    print(f"Keys starting with 'docs/': {[item.key for item in docs]}")

    item = store.read("docs/hello.txt")
    with item.get_data_reader(6, 4) as reader:
        print(f"4 bytes from offset 6 of {item.key}: {reader.read()!r}")
    print(f"All of {item.key}: {item.read_bytes()!r}")


def main() -> None:
    os.makedirs(DATA, exist_ok=True)
    dir_store = DirectoryDataStore(os.path.join(DATA, "files"))
    chunk_store = ChunkDataStore(
        "demo_chunks",
        SqlStoreFactory(f"sqlite:///{os.path.join(DATA, 'chunks.db')}"),
        chunk_size=64 * 1024,
    )

    tour(f"DirectoryDataStore in {dir_store.root}", dir_store)
    tour("ChunkDataStore on SQLite, 64 KiB chunks", chunk_store)

    print("\n=== Copying between stores ===")
    copied = chunk_store.copy_data_from(dir_store, "docs/hello.txt", "copied/hello.txt")
    source = dir_store.read("docs/hello.txt")
    same = "the same" if copied.etag == source.etag else "a DIFFERENT"
    print(f"docs/hello.txt (directory) -> {copied.key} (chunks): {same} etag {copied.etag[:12]}")

    print("\n=== Cleaning up ===")
    for key in WRITTEN:
        dir_store.delete(key)
    for key in WRITTEN + [copied.key]:
        chunk_store.delete(key)
    print(f"Items left: directory store {dir_store.count()}, chunk store {chunk_store.count()}")


if __name__ == "__main__":
    main()
