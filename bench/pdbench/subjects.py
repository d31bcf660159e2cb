"""
What is measured: our stores, the baselines and the peers, behind one small interface.

Every subject works in its own directory, SQLite file, PostgreSQL tables or bucket, so a
listing sees exactly the items of its workload.
"""

import os
import shutil
import sqlite3
import time
import uuid
from typing import Dict, Optional, Tuple, Type

from pdbench.content import BLOCK, HashSink, Pattern, hash_stream

REGION = "us-east-1"  # passed explicitly: never through AWS_REGION (it switches persisty to DynamoDB)
CREDENTIALS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
SQLITE_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA busy_timeout=30000")


class Unsupported(Exception):
    """The subject cannot do this workload (said so in the table)."""


class Subject:
    kind = "ours"  # ours | baseline | peer
    local = True  # True: runs on each local filesystem (tmpfs and disk)
    label = ""

    def __init__(self, env: Dict):
        self.env = env
        self.root = os.path.join(env["fs_root"], f"{type(self).__name__}-{uuid.uuid4().hex[:8]}")

    def setup(self) -> None:
        os.makedirs(self.root, exist_ok=True)

    def teardown(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    # large items: returns the seconds spent in the final commit / close, if known
    def write_large(self, key: str, pattern: Pattern, size: int) -> Optional[float]:
        raise Unsupported()

    def read_large(self, key: str) -> Tuple[int, str]:
        raise Unsupported()

    def delete(self, key: str) -> None:
        raise Unsupported()

    # small items
    def write_small(self, key: str, data: bytes) -> None:
        raise Unsupported()

    def list_all(self) -> int:
        """How many items, each listed with its size."""
        raise Unsupported()

    def read_small(self, key: str) -> bytes:
        raise Unsupported()

    # ranges: open the item by key and read length bytes at offset
    def read_range(self, key: str, offset: int, length: int) -> bytes:
        raise Unsupported()


# region: our stores
class _Ours(Subject):
    kind = "ours"

    def make_store(self):
        raise NotImplementedError()

    def setup(self) -> None:
        super().setup()
        self.store = self.make_store()

    def write_large(self, key, pattern, size):
        writer = self.store.get_data_writer(key, "application/octet-stream")
        with writer:
            for view in pattern.blocks(size):
                writer.write(view)
            started = time.perf_counter()
        return time.perf_counter() - started

    def read_large(self, key):
        item = self.store.read(key)
        with item.get_data_reader() as reader:
            return hash_stream(reader)

    def delete(self, key):
        self.store.delete(key)

    def write_small(self, key, data):
        self.store.write_bytes(key, data, "application/octet-stream")

    def list_all(self):
        count = 0
        for item in self.store.search_all():
            count += 1 if item.size >= 0 else 0
        return count

    def read_small(self, key):
        return self.store.read(key).read_bytes()

    def read_range(self, key, offset, length):
        item = self.store.read(key)
        with item.get_data_reader(offset, length) as reader:
            return reader.read()


class Directory(_Ours):
    label = "DirectoryDataStore (fsync)"

    def make_store(self):
        from persisty_data.directory.directory_data_store import DirectoryDataStore

        return DirectoryDataStore(os.path.join(self.root, "store"))


class DirectoryNoFsync(Directory):
    label = "DirectoryDataStore(fsync=False)"

    def make_store(self):
        from persisty_data.directory.directory_data_store import DirectoryDataStore

        return DirectoryDataStore(os.path.join(self.root, "store"), fsync=False)


class ChunkSqlite(_Ours):
    label = "ChunkDataStore on SQLite"

    def make_store(self):
        from persisty_data.chunk.chunk_data_store import ChunkDataStore
        from persisty_data.chunk.sql_store_factory import SqlStoreFactory

        return ChunkDataStore("bench", SqlStoreFactory(f"sqlite:///{self.root}/chunks.db"))


class ChunkPostgres(_Ours):
    label = "ChunkDataStore on PostgreSQL"
    local = False

    def make_store(self):
        from persisty_data.chunk.chunk_data_store import ChunkDataStore
        from persisty_data.chunk.sql_store_factory import SqlStoreFactory

        self.factory = SqlStoreFactory(self.env["pg_url"])
        return ChunkDataStore(f"pdbench_{uuid.uuid4().hex[:12]}", self.factory)

    def teardown(self):
        store = getattr(self, "store", None)
        if store is not None:
            self.factory.drop_tables(store.item_meta, store.chunk_meta)
            self.factory.engine.dispose()
        super().teardown()


class _S3Bucket(Subject):
    local = False

    def setup(self):
        import boto3

        self.bucket = f"pdbench-{uuid.uuid4().hex[:16]}"
        self.client = boto3.client("s3", endpoint_url=self.env["s3_endpoint"], region_name=REGION, **CREDENTIALS)
        self.client.create_bucket(Bucket=self.bucket)
        super().setup()

    def teardown(self):
        client = getattr(self, "client", None)
        if client is not None:
            try:
                for upload in client.list_multipart_uploads(Bucket=self.bucket).get("Uploads") or ():
                    client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
                    objects = [{"Key": o["Key"]} for o in page.get("Contents") or ()]
                    if objects:
                        client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True})
                client.delete_bucket(Bucket=self.bucket)
            except Exception:  # pylint: disable=broad-except
                pass
        super().teardown()


class S3(_S3Bucket, _Ours):
    label = "S3DataStore (moto server)"
    part_size: Optional[int] = None

    def make_store(self):
        from persisty_data.s3.s3_data_store import S3DataStore

        kwargs = {"part_size": self.part_size} if self.part_size else {}
        # A client of our own: the store's defaults, with the bench's credentials.
        import boto3

        session = boto3.session.Session(**CREDENTIALS)
        return S3DataStore(
            self.bucket, endpoint_url=self.env["s3_endpoint"], region_name=REGION, session=session, **kwargs
        )


# endregion


# region: baselines
class RawFile(Subject):
    """Plain Python file I/O with 1 MiB buffers: write + fsync, read; no hashing on write."""

    kind = "baseline"
    label = "raw file write+fsync / read (1 MiB buffers)"
    hash_on_write = False

    def _path(self, key):
        return os.path.join(self.root, *key.split("/"))

    def write_large(self, key, pattern, size):
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        digest = __import__("hashlib").sha256() if self.hash_on_write else None
        with open(path, "wb", buffering=0) as file:
            for view in pattern.blocks(size):
                if digest is not None:
                    digest.update(view)
                file.write(view)
            started = time.perf_counter()
            os.fsync(file.fileno())
        return time.perf_counter() - started

    def read_large(self, key):
        with open(self._path(key), "rb", buffering=0) as file:
            return hash_stream(file)

    def delete(self, key):
        os.unlink(self._path(key))

    def write_small(self, key, data):
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb", buffering=0) as file:
            file.write(data)
            os.fsync(file.fileno())

    def list_all(self):
        count = 0
        stack = [self.root]
        while stack:
            with os.scandir(stack.pop()) as scan:
                for entry in scan:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    else:
                        count += 1 if entry.stat().st_size >= 0 else 0
        return count

    def read_small(self, key):
        with open(self._path(key), "rb", buffering=0) as file:
            return file.read()

    def read_range(self, key, offset, length):
        fd = os.open(self._path(key), os.O_RDONLY)
        try:
            return os.pread(fd, length, offset)
        finally:
            os.close(fd)


class RawFileSha256(RawFile):
    """The same bytes, SHA-256 hashed and written in one plain loop, then fsync."""

    label = "raw file write+SHA-256+fsync, one loop"
    hash_on_write = True

    def read_large(self, key):
        raise Unsupported()

    def write_small(self, key, data):
        raise Unsupported()

    def read_range(self, key, offset, length):
        raise Unsupported()


class SqliteBlob(Subject):
    """sqlite3 rows of 1 MiB BLOBs (the chunk store's chunk size), WAL, synchronous=NORMAL."""

    kind = "baseline"
    label = "sqlite3 BLOB rows (1 MiB, one transaction)"

    def setup(self):
        super().setup()
        self.db = sqlite3.connect(os.path.join(self.root, "blobs.db"), isolation_level=None)
        for pragma in SQLITE_PRAGMAS:
            self.db.execute(pragma)
        self.db.execute("CREATE TABLE chunk (item TEXT, part INTEGER, data BLOB, PRIMARY KEY (item, part))")
        self.db.execute("CREATE TABLE item (key TEXT PRIMARY KEY, size INTEGER, data BLOB)")

    def teardown(self):
        self.db.close()
        super().teardown()

    def write_large(self, key, pattern, size):
        self.db.execute("BEGIN")
        for part, view in enumerate(pattern.blocks(size)):
            self.db.execute("INSERT INTO chunk VALUES (?, ?, ?)", (key, part, view))
        started = time.perf_counter()
        self.db.execute("COMMIT")
        return time.perf_counter() - started

    def read_large(self, key):
        import hashlib

        digest = hashlib.sha256()
        size = 0
        for (data,) in self.db.execute("SELECT data FROM chunk WHERE item = ? ORDER BY part", (key,)):
            digest.update(data)
            size += len(data)
        return size, digest.hexdigest()

    def delete(self, key):
        self.db.execute("DELETE FROM chunk WHERE item = ?", (key,))
        self.db.execute("DELETE FROM item WHERE key = ?", (key,))

    def write_small(self, key, data):
        # One transaction per item, as a store must (autocommit).
        self.db.execute("INSERT OR REPLACE INTO item VALUES (?, ?, ?)", (key, len(data), data))

    def list_all(self):
        return sum(1 for _ in self.db.execute("SELECT key, size FROM item ORDER BY key"))

    def read_small(self, key):
        return self.db.execute("SELECT data FROM item WHERE key = ?", (key,)).fetchone()[0]

    def read_range(self, key, offset, length):
        first, last = offset // BLOCK, (offset + length - 1) // BLOCK
        rows = self.db.execute(
            "SELECT data FROM chunk WHERE item = ? AND part BETWEEN ? AND ? ORDER BY part", (key, first, last)
        ).fetchall()
        if not rows:  # a small item
            return self.db.execute("SELECT data FROM item WHERE key = ?", (key,)).fetchone()[0][offset:][:length]
        data = b"".join(r[0] for r in rows)
        start = offset - first * BLOCK
        return data[start : start + length]


class PgBlob(Subject):
    """psycopg2 bytea rows of 1 MiB in one transaction (the chunk store's chunk size)."""

    kind = "baseline"
    label = "psycopg2 bytea rows (1 MiB, one transaction)"
    local = False

    def setup(self):
        super().setup()
        import psycopg2

        self.table = f"pdbench_{uuid.uuid4().hex[:12]}"
        self.db = psycopg2.connect(self.env["pg_url"])
        with self.db, self.db.cursor() as cursor:
            cursor.execute(
                f"CREATE TABLE {self.table}_chunk (item TEXT, part INTEGER, data BYTEA, PRIMARY KEY (item, part))"
            )
            cursor.execute(f"CREATE TABLE {self.table}_item (key TEXT PRIMARY KEY, size INTEGER, data BYTEA)")

    def teardown(self):
        db = getattr(self, "db", None)
        if db is not None:
            db.rollback()
            with db, db.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {self.table}_chunk")
                cursor.execute(f"DROP TABLE IF EXISTS {self.table}_item")
            db.close()
        super().teardown()

    def write_large(self, key, pattern, size):
        with self.db.cursor() as cursor:
            for part, view in enumerate(pattern.blocks(size)):
                cursor.execute(f"INSERT INTO {self.table}_chunk VALUES (%s, %s, %s)", (key, part, view))
        started = time.perf_counter()
        self.db.commit()
        return time.perf_counter() - started

    def read_large(self, key):
        import hashlib

        digest = hashlib.sha256()
        size = 0
        with self.db.cursor(name=f"c{uuid.uuid4().hex}") as cursor:
            cursor.itersize = 1
            cursor.execute(f"SELECT data FROM {self.table}_chunk WHERE item = %s ORDER BY part", (key,))
            for (data,) in cursor:
                digest.update(data)
                size += len(data)
        self.db.commit()
        return size, digest.hexdigest()

    def _autocommit(self, sql, params):
        with self.db.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall() if cursor.description else None
        self.db.commit()
        return rows

    def delete(self, key):
        self._autocommit(f"DELETE FROM {self.table}_chunk WHERE item = %s", (key,))
        self._autocommit(f"DELETE FROM {self.table}_item WHERE key = %s", (key,))

    def write_small(self, key, data):
        self._autocommit(
            f"INSERT INTO {self.table}_item VALUES (%s, %s, %s) "
            "ON CONFLICT (key) DO UPDATE SET size = EXCLUDED.size, data = EXCLUDED.data",
            (key, len(data), data),
        )

    def list_all(self):
        return len(self._autocommit(f"SELECT key, size FROM {self.table}_item ORDER BY key", ()))

    def read_small(self, key):
        return bytes(self._autocommit(f"SELECT data FROM {self.table}_item WHERE key = %s", (key,))[0][0])

    def read_range(self, key, offset, length):
        first, last = offset // BLOCK, (offset + length - 1) // BLOCK
        rows = self._autocommit(
            f"SELECT data FROM {self.table}_chunk WHERE item = %s AND part BETWEEN %s AND %s ORDER BY part",
            (key, first, last),
        )
        data = b"".join(bytes(r[0]) for r in rows)
        start = offset - first * BLOCK
        return data[start : start + length]


class Boto3(_S3Bucket):
    """Plain boto3: upload_fileobj / download_fileobj (s3transfer defaults), list_objects_v2."""

    kind = "baseline"
    label = "boto3 upload_fileobj / download_fileobj"

    def write_large(self, key, pattern, size):
        self.client.upload_fileobj(pattern.reader(size), self.bucket, key)

    def read_large(self, key):
        sink = HashSink()
        self.client.download_fileobj(self.bucket, key, sink)
        return sink.size, sink.hexdigest()

    def delete(self, key):
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def write_small(self, key, data):
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def list_all(self):
        count = 0
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            count += len(page.get("Contents") or ())
        return count

    def read_small(self, key):
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def read_range(self, key, offset, length):
        response = self.client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={offset}-{offset + length - 1}")
        return response["Body"].read()


# endregion


# region: peers
class FsspecLocal(Subject):
    kind = "peer"
    label = "fsspec LocalFileSystem"

    def setup(self):
        super().setup()
        import fsspec

        self.fs = fsspec.filesystem("file", auto_mkdir=True)

    def _path(self, key):
        return f"{self.root}/{key}"

    def write_large(self, key, pattern, size):
        with self.fs.open(self._path(key), "wb") as file:
            for view in pattern.blocks(size):
                file.write(view)
            started = time.perf_counter()
        return time.perf_counter() - started

    def read_large(self, key):
        with self.fs.open(self._path(key), "rb") as file:
            return hash_stream(file)

    def delete(self, key):
        self.fs.rm_file(self._path(key))

    def write_small(self, key, data):
        self.fs.pipe_file(self._path(key), data)

    def list_all(self):
        return sum(1 for info in self.fs.find(self.root, detail=True).values() if info["size"] >= 0)

    def read_small(self, key):
        return self.fs.cat_file(self._path(key))

    def read_range(self, key, offset, length):
        with self.fs.open(self._path(key), "rb") as file:
            file.seek(offset)
            return file.read(length)


class S3fs(_S3Bucket, FsspecLocal):
    kind = "peer"
    label = "s3fs (fsspec)"

    def setup(self):
        super().setup()
        import s3fs

        self.fs = s3fs.S3FileSystem(
            key=CREDENTIALS["aws_access_key_id"],
            secret=CREDENTIALS["aws_secret_access_key"],
            endpoint_url=self.env["s3_endpoint"],
            client_kwargs={"region_name": REGION},
            skip_instance_cache=True,
        )

    def _path(self, key):
        return f"{self.bucket}/{key}"

    def list_all(self):
        self.fs.invalidate_cache()
        return sum(1 for info in self.fs.find(self.bucket, detail=True).values() if info["size"] >= 0)

    def read_range(self, key, offset, length):
        return self.fs.cat_file(self._path(key), start=offset, end=offset + length)


class RemoteStoreLocal(Subject):
    kind = "peer"
    label = "remote-store LocalBackend"

    def make_backend(self):
        from remote_store.backends import LocalBackend

        return LocalBackend(self.root)

    def setup(self):
        super().setup()
        from remote_store import Store

        self.rs = Store(self.make_backend())

    def write_large(self, key, pattern, size):
        self.rs.write_atomic(key, pattern.reader(size), overwrite=True)

    def read_large(self, key):
        with self.rs.read(key) as file:
            return hash_stream(file)

    def delete(self, key):
        self.rs.delete(key)

    def write_small(self, key, data):
        self.rs.write_atomic(key, data, overwrite=True)

    def list_all(self):
        return sum(1 for info in self.rs.list_files("", recursive=True) if info.size >= 0)

    def read_small(self, key):
        return self.rs.read_bytes(key)

    def read_range(self, key, offset, length):
        with self.rs.read_seekable(key) as file:
            file.seek(offset)
            return file.read(length)


class RemoteStoreS3(_S3Bucket, RemoteStoreLocal):
    label = "remote-store S3Backend"

    def setup(self):
        super().setup()
        from remote_store import Store
        from remote_store.backends import S3Backend

        self.rs = Store(
            S3Backend(
                self.bucket,
                endpoint_url=self.env["s3_endpoint"],
                key=CREDENTIALS["aws_access_key_id"],
                secret=CREDENTIALS["aws_secret_access_key"],
                region_name=REGION,
            )
        )

    def write_large(self, key, pattern, size):
        self.rs.write(key, pattern.reader(size), overwrite=True)

    def write_small(self, key, data):
        self.rs.write(key, data, overwrite=True)


class GenroLocal(Subject):
    kind = "peer"
    label = "genro-storage local"

    def setup(self):
        super().setup()
        from genro_storage import StorageManager

        self.manager = StorageManager()
        self.manager.configure([{"name": "bench", "protocol": "local", "base_path": self.root}])

    def _node(self, key):
        return self.manager.node(f"bench:{key}")

    def write_large(self, key, pattern, size):
        with self._node(key).open("wb") as file:
            for view in pattern.blocks(size):
                file.write(view)
            started = time.perf_counter()
        return time.perf_counter() - started

    def read_large(self, key):
        with self._node(key).open("rb") as file:
            return hash_stream(file)

    def delete(self, key):
        self._node(key).delete()

    def write_small(self, key, data):
        self._node(key).write_bytes(data)

    def list_all(self):
        count = 0
        stack = [self.manager.node("bench:")]
        while stack:
            for child in stack.pop().children():
                if child.is_dir():
                    stack.append(child)
                else:
                    count += 1 if child.size() >= 0 else 0
        return count

    def read_small(self, key):
        return self._node(key).read_bytes()

    def read_range(self, key, offset, length):
        with self._node(key).open("rb") as file:
            file.seek(offset)
            return file.read(length)


# endregion

SUBJECTS: Dict[str, Type[Subject]] = {
    "directory": Directory,
    "directory_nofsync": DirectoryNoFsync,
    "chunk_sqlite": ChunkSqlite,
    "chunk_postgres": ChunkPostgres,
    "s3": S3,
    "raw_file": RawFile,
    "raw_file_sha256": RawFileSha256,
    "sqlite_blob": SqliteBlob,
    "pg_blob": PgBlob,
    "boto3": Boto3,
    "fsspec_local": FsspecLocal,
    "s3fs": S3fs,
    "remote_store_local": RemoteStoreLocal,
    "remote_store_s3": RemoteStoreS3,
    "genro_local": GenroLocal,
}

PEER_PACKAGES = {
    "fsspec_local": "fsspec",
    "s3fs": "s3fs",
    "remote_store_local": "remote_store",
    "remote_store_s3": "remote_store",
    "genro_local": "genro_storage",
}
