"""
gc(): one way to remove what crashed writes leave, per backend, with a dry run that
removes nothing; the restrict-access wrapper; ``persisty-data gc``.
"""

import os
import subprocess
import sys
from datetime import datetime, timedelta

import boto3
import pytest
from persisty.search_filter.exclude_all import EXCLUDE_ALL
from persisty.security.store_access import ALL_ACCESS, StoreAccess

from persisty_data.chunk.chunk_data_store import ChunkDataStore
from persisty_data.chunk.sql_store_factory import SqlStoreFactory
from persisty_data.directory.directory_data_store import DirectoryDataStore
from persisty_data.errors import ConfigurationError, ForbiddenError, UploadExpiredError
from persisty_data.factory.restrict_access_data_store import RestrictAccessDataStore
from tests.conformance.helpers import random_bytes
from tests.s3_backends import REGION, S3MotoBackend, s3_debris

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOUR = timedelta(hours=1)
CHUNK = 1024
# Older than anything stored: the cutoff would fall before the year 1 (OverflowError).
AGES_PAST_THE_CALENDAR = [timedelta(days=1_000_000), timedelta.max]


def _age(path: str, seconds: float) -> None:
    then = datetime.now().timestamp() - seconds
    os.utime(path, (then, then))


def _summary(report):
    return sorted((d.kind, d.name, d.size_in_bytes) for d in report.removed)


class TestDirectory:
    @pytest.fixture(params=[False, True], ids=["sidecars", "default"])
    def store(self, request, tmp_path):
        return DirectoryDataStore(str(tmp_path / "root"), xattrs=False if not request.param else None)

    def _debris(self, store):
        store.write_bytes("kept.txt", b"kept", "text/plain")
        old_temp = os.path.join(store._temp_dir, "w-crashed")
        young_temp = os.path.join(store._temp_dir, "w-running")
        for path, age in ((old_temp, 2 * 3600), (young_temp, 0)):
            with open(path, "wb") as file:
                file.write(b"partial")
            _age(path, age)
        # A sidecar whose file was deleted behind the store's back.
        orphan = DirectoryDataStore(store.root, xattrs=False)
        orphan.write_bytes("gone.txt", b"gone", "text/x-gone")
        os.unlink(os.path.join(store.root, "gone.txt"))
        sidecars = [os.path.join(d, n) for d, _, names in os.walk(store._sidecar_dir) for n in names]
        for path in sidecars:
            _age(path, 2 * 3600)
        return old_temp, young_temp

    def test_old_temp_files_and_orphan_sidecars_go(self, store):
        old_temp, young_temp = self._debris(store)
        report = store.gc(HOUR)
        kinds = [(d.kind, d.key) for d in report.removed]
        assert ("temp_file", None) in kinds and ("sidecar", "gone.txt") in kinds
        assert len(kinds) == 2
        assert ("temp_file", ".persisty_data/tmp/w-crashed", 7) in _summary(report)
        assert not os.path.exists(old_temp) and os.path.exists(young_temp)
        item = store.read("kept.txt")
        assert (item.content_type, item.read_bytes()) == ("text/plain", b"kept")
        assert store.gc(HOUR).removed == []

    def test_dry_run_leaves_everything(self, store):
        old_temp, _ = self._debris(store)
        before = sorted(os.path.join(d, n) for d, _, names in os.walk(store.root) for n in names)
        report = store.gc(HOUR, dry_run=True)
        assert report.dry_run and report.count == 2 and report.size_in_bytes > 7
        assert sorted(os.path.join(d, n) for d, _, names in os.walk(store.root) for n in names) == before
        assert _summary(store.gc(HOUR)) == _summary(report)

    def test_a_live_writer_survives_a_dry_run_and_loses_its_upload_to_a_real_one(self, store):
        kept = store.get_data_writer("kept.bin")
        kept.write(b"first half ")
        assert [d.kind for d in store.gc(timedelta(0), dry_run=True).removed] == ["temp_file"]
        kept.write(b"second half")
        kept.close()
        assert store.read("kept.bin").read_bytes() == b"first half second half"
        lost = store.get_data_writer("lost.bin")
        lost.write(b"partial")
        assert store.gc(timedelta(0)).count == 1
        with pytest.raises(UploadExpiredError):
            lost.close()
        assert store.read("lost.bin") is None
        assert store.gc(timedelta(0), dry_run=True).removed == []  # no sidecar, no temp file

    @pytest.mark.parametrize("age", AGES_PAST_THE_CALENDAR, ids=["1000000d", "max"])
    def test_an_age_past_the_calendar_removes_nothing(self, store, age):
        old_temp, young_temp = self._debris(store)
        assert store.gc(age).removed == []
        assert os.path.exists(old_temp) and os.path.exists(young_temp)

    def test_bad_age_is_refused(self, store):
        with pytest.raises(ConfigurationError):
            store.gc(timedelta(seconds=-1))
        with pytest.raises(ConfigurationError):
            store.gc(3600)


class TestChunk:
    @pytest.fixture
    def store(self, tmp_path):
        factory = SqlStoreFactory(f"sqlite:///{tmp_path / 'chunks.sqlite'}")
        store = ChunkDataStore("files", factory, chunk_size=CHUNK)
        yield store
        factory.engine.dispose()

    def _crashed_upload(self, store, key: str):
        writer = store.get_data_writer(key)
        writer.write(random_bytes(CHUNK * (store.write_batch_chunks + 1)))
        writer._state = "crashed"  # as if its process died: never aborted, never published
        return writer

    def test_expired_uploads_go_and_dry_run_keeps_them(self, store):
        store.write_bytes("kept", random_bytes(CHUNK * 3))
        writer = self._crashed_upload(store, "k")
        chunks = store.chunk_store.count()
        assert store.gc(HOUR).removed == []  # the lease is fresh
        report = store.gc(timedelta(0), dry_run=True)
        assert [(d.kind, d.name, d.key) for d in report.removed] == [("upload", writer.upload_id, "k")]
        assert report.size_in_bytes == CHUNK * store.write_batch_chunks
        assert store.chunk_store.count() == chunks
        assert _summary(store.gc(timedelta(0))) == _summary(report)
        assert store.chunk_store.count() == 3
        assert len(store.read("kept").read_bytes()) == CHUNK * 3

    @pytest.mark.parametrize("age", AGES_PAST_THE_CALENDAR, ids=["1000000d", "max"])
    def test_an_age_past_the_calendar_removes_nothing(self, store, age):
        self._crashed_upload(store, "k")
        chunks = store.chunk_store.count()
        assert store.gc(age).removed == []
        assert store.gc(age, dry_run=True).removed == []
        assert store.remove_orphan_chunks(age) == 0
        assert store.chunk_store.count() == chunks

    def test_remove_orphan_chunks_refuses_a_negative_age(self, store):
        """A cutoff in the future would collect the uploads of writers still running."""
        writer = store.get_data_writer("live")
        writer.write(random_bytes(CHUNK * (store.write_batch_chunks + 1)))
        with pytest.raises(ConfigurationError):
            store.remove_orphan_chunks(timedelta(hours=-1))
        writer.write(b"tail")
        writer.close()
        assert store.read("live").size == CHUNK * (store.write_batch_chunks + 1) + 4


class TestS3:
    @pytest.fixture
    def store(self, tmp_path):
        with S3MotoBackend().make(str(tmp_path)) as s3_store:
            yield s3_store

    def test_unfinished_multipart_uploads_and_temp_keys_go(self, store):
        plain = boto3.client("s3", region_name=REGION)
        upload = plain.create_multipart_upload(Bucket=store.bucket, Key="dead.bin")
        plain.put_object(Bucket=store.bucket, Key=".persisty_data/uploads/dead2", Body=b"xyz")
        store.write_bytes("kept.bin", b"kept")
        report = store.gc(timedelta(0), dry_run=True)
        expected = [
            ("multipart_upload", f"dead.bin?uploadId={upload['UploadId']}", None),
            ("temp_key", ".persisty_data/uploads/dead2", 3),
        ]
        assert _summary(report) == expected
        assert len(s3_debris(store)) == 2
        assert _summary(store.gc(timedelta(0))) == expected
        assert s3_debris(store) == []
        assert store.read("kept.bin").read_bytes() == b"kept"

    def test_young_debris_stays(self, store):
        boto3.client("s3", region_name=REGION).put_object(
            Bucket=store.bucket, Key=".persisty_data/uploads/young", Body=b"x"
        )
        assert store.gc(HOUR).removed == []
        assert len(s3_debris(store)) == 1

    @pytest.mark.parametrize("age", AGES_PAST_THE_CALENDAR, ids=["1000000d", "max"])
    def test_an_age_past_the_calendar_removes_nothing(self, store, age):
        boto3.client("s3", region_name=REGION).put_object(
            Bucket=store.bucket, Key=".persisty_data/uploads/old", Body=b"x"
        )
        assert store.gc(age).removed == []
        assert store.remove_stale_uploads(age) == 0
        with pytest.raises(ConfigurationError):
            store.remove_stale_uploads(timedelta(hours=-1))
        assert len(s3_debris(store)) == 1


class TestRestrictAccess:
    def test_only_unrestricted_access_may_gc(self, tmp_path):
        store = DirectoryDataStore(str(tmp_path / "root"))
        debris = os.path.join(store._temp_dir, "w-crashed")
        with open(debris, "wb"):
            pass
        _age(debris, 7200)
        limited = RestrictAccessDataStore(store, StoreAccess(delete_filter=EXCLUDE_ALL))
        with pytest.raises(ForbiddenError):
            limited.gc(HOUR)
        with pytest.raises(ForbiddenError):
            limited.gc(timedelta.max, dry_run=True)
        assert os.path.exists(debris)
        report = RestrictAccessDataStore(store, ALL_ACCESS).gc(HOUR)
        assert [d.name for d in report.removed] == [".persisty_data/tmp/w-crashed"]


class TestCli:
    @pytest.fixture
    def config(self, tmp_path):
        path = tmp_path / "persisty-data.toml"
        path.write_text(
            '[defaults]\nsecret = "gc-test-secret-0123456789abcdef01"\n\n'
            '[stores.files]\nbackend = "directory"\nroot = "data"\nfsync = false\n'
        )
        return path

    def _run(self, config, *args):
        env = dict(os.environ, PYTHONPATH=REPO, PERSISTY_SECRET_KEY="persisty-data-test-secret-key-32")
        command = [sys.executable, "-m", "persisty_data.cli.main", "--config", str(config), "gc", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    def test_gc_and_dry_run(self, config, tmp_path):
        store = DirectoryDataStore(str(tmp_path / "data"))
        debris = os.path.join(store._temp_dir, "w-crashed")
        with open(debris, "wb") as file:
            file.write(b"12345")
        _age(debris, 3 * 86400)
        dry = self._run(config, "files", "--older-than", "2d", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert dry.stdout.splitlines() == [
            "temp_file\t5\t.persisty_data/tmp/w-crashed",
            "would remove 1 piece(s) of debris, 5 bytes",
        ]
        assert os.path.exists(debris)
        assert self._run(config, "files:", "--older-than", "4d").stdout.splitlines()[-1].startswith("removed 0 ")
        done = self._run(config, "files", "--older-than", "30m")
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1] == "removed 1 piece(s) of debris, 5 bytes"
        assert not os.path.exists(debris)

    @pytest.mark.parametrize("duration", ["", "10", "h", "-2h", "2w", "1.5h", "9" * 400 + "d"])
    def test_bad_durations_exit_2(self, config, duration):
        result = self._run(config, "files", f"--older-than={duration}")
        assert result.returncode == 2
        assert "duration" in result.stderr and "Traceback" not in result.stderr

    def test_missing_older_than_and_bad_store(self, config):
        assert self._run(config, "files").returncode == 2
        result = self._run(config, "files:some/key", "--older-than", "1h")
        assert result.returncode == 2 and "whole store" in result.stderr
        result = self._run(config, "nosuch", "--older-than", "1h")
        assert result.returncode == 1 and "Traceback" not in result.stderr
