"""
S3DataStore behaviour the conformance suite cannot see: what goes over the wire
(observed with botocore event hooks, never mocked), multipart cleanup, server-side
copies, interop with plain boto3 and the AWS CLI, and error mapping.
"""

import hashlib
import http.client
import http.server
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Dict, Iterator, List, Tuple
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    FlexibleChecksumError,
    IncompleteReadError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from moto.core.authorization import enable_iam_authentication
from persisty.attr.attr_filter import AttrFilter
from persisty.attr.attr_filter_op import AttrFilterOp
from persisty.search_filter.and_filter import And
from persisty.search_order.search_order import SearchOrder
from persisty.search_order.search_order_attr import SearchOrderAttr

from persisty_data.directory.directory_data_store import DirectoryDataStore
from persisty_data.errors import (
    ConfigurationError,
    ContentChangedError,
    ForbiddenError,
    InvalidKeyError,
    InvalidRangeError,
    ItemTooLargeError,
    PersistyDataError,
    StorageError,
    StorageUnavailableError,
    UnsupportedOperationError,
)
from persisty_data.s3.s3_data_store import MIN_PART_SIZE, S3DataStore
from persisty_data.s3.s3_data_store_factory import S3DataStoreFactory
from persisty_data.s3.s3_errors import map_exception, map_s3_errors
from persisty_data.search import KeyPrefixFilter
from tests.s3_backends import (
    CREDENTIALS,
    REGION,
    S3MotoBackend,
    S3MotoServerBackend,
    empty_and_delete_bucket,
    moto_in_process,
    moto_server_endpoint,
    new_bucket_name,
    s3_debris,
    server_client,
    server_session,
)
from tests.web.support import ALICE, encode_multipart, form_fields

PART = MIN_PART_SIZE


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pattern(size: int, seed: int = 0) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


def write_in_mib_pieces(writer, data: bytes) -> None:
    for start in range(0, len(data), 1024 * 1024):
        writer.write(data[start : start + 1024 * 1024])


def replace_with_three_parts(store, key: str = "big.bin"):
    """
    Write a small item at key, then replace it through a writer with content of three
    parts, checking the old item stays visible until close(). Returns (wire, data, item):
    the S3 calls of the replacement, its content and the new item.
    """
    old = store.write_bytes(key, b"old")
    wire = Wire(store.client)
    data = pattern(2 * PART + 123)
    with store.get_data_writer(key, "application/x-test") as writer:
        write_in_mib_pieces(writer, data)
        assert store.read(key) == old  # nothing visible before close()
    return wire, data, writer.item


class Wire:
    """Records the S3 operations a client performs, through botocore's own event hooks."""

    def __init__(self, client):
        self.calls: List[Tuple[str, Dict]] = []
        self.sent: List[Tuple[str, str, Dict[str, str]]] = []
        client.meta.events.register("provide-client-params.s3", self._before_call)
        client.meta.events.register("before-send.s3", self._before_send)

    def _before_call(self, model, params, **kwargs):
        self.calls.append((model.name, dict(params)))

    def _before_send(self, request, event_name, **kwargs):
        headers = {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}
        self.sent.append((event_name.rsplit(".", 1)[-1], request.method, headers))

    def ops(self) -> List[str]:
        return [name for name, _ in self.calls]

    def count(self, name: str) -> int:
        return self.ops().count(name)

    def headers(self, name: str) -> List[Dict[str, str]]:
        return [headers for op, _, headers in self.sent if op == name]

    def clear(self) -> None:
        self.calls.clear()
        self.sent.clear()


@pytest.fixture
def store(tmp_path):
    with S3MotoBackend().make(str(tmp_path)) as s3_store:
        yield s3_store


@pytest.fixture
def server_store(tmp_path):
    with S3MotoServerBackend().make(str(tmp_path)) as s3_store:
        yield s3_store


@contextmanager
def moto_store(bucket: str = None, versioned: bool = False, **options):
    with moto_in_process():
        bucket = bucket or new_bucket_name()
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=bucket)
        if versioned:
            client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        options.setdefault("part_size", PART)
        try:
            yield S3DataStore(bucket, name="files", region_name=REGION, **options)
        finally:
            empty_and_delete_bucket(client, bucket)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TestConfiguration:
    def test_built_client_signs_sigv4_with_standard_retries(self, store):
        config = store.client.meta.config
        assert config.signature_version == "s3v4"
        assert config.retries["mode"] == "standard"
        assert store.client.meta.region_name == REGION

    def test_endpoint_settings_use_path_style(self):
        store = S3DataStore("bucket-x", endpoint_url="http://127.0.0.1:9", region_name=REGION)
        assert store.client.meta.endpoint_url == "http://127.0.0.1:9"
        assert store.client.meta.config.s3["addressing_style"] == "path"
        assert store.client.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}

    def test_a_given_client_is_used_as_is(self):
        client = boto3.client("s3", region_name=REGION)
        assert S3DataStore("bucket-x", client=client).client is client
        with pytest.raises(ConfigurationError):
            S3DataStore("bucket-x", client=client, endpoint_url="http://127.0.0.1:9")

    def test_part_size_is_never_below_the_s3_minimum(self):
        with pytest.raises(ConfigurationError):
            S3DataStore("bucket-x", region_name=REGION, part_size=PART - 1)
        assert S3DataStore("bucket-x", region_name=REGION).part_size == 8 * 1024 * 1024

    @pytest.mark.parametrize("value", [0, 65, "4", 2.0])
    def test_max_concurrency_is_checked(self, value):
        with pytest.raises(ConfigurationError, match="max_concurrency"):
            S3DataStore("bucket-x", region_name=REGION, max_concurrency=value)

    def test_prefix_is_a_folder(self):
        assert S3DataStore("bucket-x", prefix="a/b", region_name=REGION).prefix == "a/b/"
        with pytest.raises(ConfigurationError):
            S3DataStore("bucket-x", prefix="/abs", region_name=REGION)
        with pytest.raises(ConfigurationError):
            S3DataStore("bucket-x", prefix="a//b", region_name=REGION)

    def test_boto3_stays_inside_the_s3_package(self):
        # persisty itself imports boto3 when it happens to be installed, so hide it.
        code = """
import sys
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("boto3", "botocore"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Hide())
import persisty_data.data_store_abc, persisty_data.directory.directory_data_store
import persisty_data.chunk.chunk_data_store
try:
    import persisty_data.s3.s3_data_store
except ModuleNotFoundError as exc:
    print(exc)
"""
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        assert "pip install 'persisty-data[s3]'" in out.stdout


class TestPresigning:
    """URLs and forms are SigV4 whatever client the store was given."""

    def test_a_given_clients_urls_and_forms_are_sigv4_and_work(self, server_store):
        client = server_client()  # default config: boto3 presigns S3 with SigV2 then
        store = S3DataStore(server_store.bucket, client=client)
        factory = S3DataStoreFactory(store)
        store.write_bytes("alice/a.txt", b"signed")
        url = factory.get_download_url("alice/a.txt", ALICE)
        assert url.startswith(f"{moto_server_endpoint()}/{store.bucket}/alice/a.txt?")
        query = parse_qs(urlsplit(url).query)
        assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
        assert query["X-Amz-Credential"][0].startswith(f"{CREDENTIALS['aws_access_key_id']}/")
        assert query["X-Amz-Credential"][0].endswith(f"/{REGION}/s3/aws4_request")
        assert "AWSAccessKeyId" not in query
        assert httpx.get(url, timeout=30).content == b"signed"

        form = factory.get_upload_form("alice/b.txt", ALICE)
        fields = form.fields_dict()
        assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256" and "AWSAccessKeyId" not in fields
        body, content_type = encode_multipart(
            form_fields(form) + [(form.file_param, ("b.txt", b"posted", "text/plain"))]
        )
        response = httpx.post(form.url, content=body, headers={"Content-Type": content_type}, timeout=30)
        assert response.status_code == 204, response.text
        assert store.read("alice/b.txt").get_data_reader().read() == b"posted"
        assert store.client is client  # everything but presigning still goes through it

    def test_the_twin_keeps_the_clients_region_endpoint_config_and_credentials(self):
        client = boto3.client(
            "s3",
            region_name="eu-west-1",
            endpoint_url="http://storage.example.test:9000",
            config=Config(s3={"addressing_style": "virtual"}),
            **CREDENTIALS,
        )
        twin = S3DataStore("bucket-x", client=client).presigning_client
        url = twin.generate_presigned_url("get_object", Params={"Bucket": "bucket-x", "Key": "k"})
        assert url.startswith("http://bucket-x.storage.example.test:9000/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&")
        assert "%2Feu-west-1%2Fs3%2Faws4_request" in url
        # Refreshable credentials (roles, SSO) change in place: the twin must follow.
        client._request_signer._credentials.access_key = "rotating"
        url = twin.generate_presigned_url("get_object", Params={"Bucket": "bucket-x", "Key": "k"})
        assert "X-Amz-Credential=rotating%2F" in url

    def test_aws_endpoints_stay_the_clients(self):
        client = boto3.client("s3", region_name="eu-central-1", **CREDENTIALS)
        twin = S3DataStore("bucket-x", client=client).presigning_client
        assert twin.meta.endpoint_url == client.meta.endpoint_url
        assert twin.meta.region_name == "eu-central-1"

    def test_a_built_client_presigns_itself(self, store):
        assert store.presigning_client is store.client


class TestWrites:
    def test_small_content_is_one_put_with_type_hash_and_checksum(self, store):
        wire = Wire(store.client)
        data = b"hello world"
        item = store.write_bytes("docs/a.txt", data)
        assert wire.count("PutObject") == 1
        assert "CreateMultipartUpload" not in wire.ops()
        (headers,) = wire.headers("PutObject")
        assert headers["content-type"] == "text/plain"
        assert headers["x-amz-meta-sha256"] == sha256(data)
        assert headers["x-amz-checksum-sha256"]  # S3 verifies the bytes against our hash
        head = store.client.head_object(Bucket=store.bucket, Key="docs/a.txt")
        assert head["ContentType"] == "text/plain"
        assert head["Metadata"]["sha256"] == sha256(data) == item.etag

    def test_a_small_write_is_one_request_and_updated_at_loads_when_used(self, store):
        wire = Wire(store.client)
        item = store.write_bytes("a.txt", b"hello")
        assert wire.ops() == ["PutObject"]  # PutObject's response has no date: no HEAD yet
        assert (item.size, item.etag, item.content_type) == (5, sha256(b"hello"), "text/plain")
        assert item.updated_at == store.read("a.txt").updated_at
        assert wire.ops() == ["PutObject", "HeadObject", "HeadObject"]
        assert item.updated_at.tzinfo is not None and item.updated_at.microsecond == 0

    def test_updated_at_of_content_replaced_before_it_was_used(self, store):
        item = store.write_bytes("a.txt", b"first")
        store.write_bytes("a.txt", b"second")
        before = datetime.now(timezone.utc).replace(microsecond=0)
        # S3 no longer has the first object's date: the item reports when it found out.
        assert before <= item.updated_at <= datetime.now(timezone.utc)

    def test_parts_go_up_in_parallel_within_max_concurrency(self, server_store):
        store = S3DataStore(server_store.bucket, client=server_store.client, part_size=PART, max_concurrency=3)
        in_flight, peak, lock = [0], [0], threading.Lock()

        def started(model, **kwargs):
            if model.name == "UploadPart":
                with lock:
                    in_flight[0] += 1
                    peak[0] = max(peak[0], in_flight[0])
                time.sleep(0.05)  # long enough for the writer to hand over the next parts

        def finished(model, **kwargs):
            if model.name == "UploadPart":
                with lock:
                    in_flight[0] -= 1

        store.client.meta.events.register("before-call.s3", started)
        store.client.meta.events.register("after-call.s3", finished)
        wire = Wire(store.client)
        data = pattern(6 * PART + 77)
        with store.get_data_writer("par.bin") as writer:
            write_in_mib_pieces(writer, data)
        assert peak[0] == 3
        numbers = [p["PartNumber"] for name, p in wire.calls if name == "UploadPart"]
        assert sorted(numbers) == list(range(1, 8))
        (complete,) = [p for name, p in wire.calls if name == "CompleteMultipartUpload"]
        assert [part["PartNumber"] for part in complete["MultipartUpload"]["Parts"]] == list(range(1, 8))
        assert writer.item.etag == sha256(data) == store.read("par.bin").etag
        assert store.read("par.bin").read_bytes() == data
        assert s3_debris(store) == []

    def test_exactly_one_part_is_still_a_single_put(self, store):
        wire = Wire(store.client)
        store.write_bytes("one.bin", pattern(PART))
        assert wire.count("PutObject") == 1 and wire.count("UploadPart") == 0

    def test_larger_content_is_one_multipart_upload_tagged_with_its_hash(self, store):
        wire, data, item = replace_with_three_parts(store)
        # The upload goes straight to the key (marked pending), completes in one step and
        # is then tagged: no copy, no temporary object, no extra request per part.
        assert [op for op in wire.ops() if op != "HeadObject"] == ["CreateMultipartUpload"] + ["UploadPart"] * 3 + [
            "CompleteMultipartUpload",
            "PutObjectTagging",
        ]
        (create,) = [p for name, p in wire.calls if name == "CreateMultipartUpload"]
        assert create["Key"] == "big.bin" and create["ContentType"] == "application/x-test"
        assert create["Tagging"] == "persisty-data-sha256=pending"
        assert all(h.get("x-amz-checksum-crc32") for h in wire.headers("UploadPart"))  # S3 checks each part
        head = store.client.head_object(Bucket=store.bucket, Key="big.bin")
        tags = store.client.get_object_tagging(Bucket=store.bucket, Key="big.bin")["TagSet"]
        assert {t["Key"]: t["Value"] for t in tags} == {
            "persisty-data-sha256": sha256(data),
            "persisty-data-s3-etag": head["ETag"].strip('"'),
        }
        assert head["ContentType"] == "application/x-test"
        assert item.etag == sha256(data) and item.s3_etag == head["ETag"]
        # Another process (no cache) finds the hash in the tags, without reading the content.
        fresh = S3DataStore(store.bucket, client=store.client)
        wire.clear()
        assert fresh.read("big.bin") == item
        assert wire.count("GetObjectTagging") == 1 and wire.count("GetObject") == 0
        assert item.read_bytes() == data
        assert s3_debris(store) == []

    def test_an_item_read_knows_its_hash_even_once_replaced(self, store):
        first, second = pattern(PART + 1, seed=1), pattern(PART + 2, seed=2)
        store.write_bytes("k.bin", first)
        fresh = S3DataStore(store.bucket, client=store.client)  # no cached hashes
        item = fresh.read("k.bin")
        store.write_bytes("k.bin", second)
        assert item.etag == sha256(first)  # read with the item, not looked up later
        with pytest.raises(ContentChangedError):
            item.read_bytes()
        assert fresh.read("k.bin").etag == sha256(second)

    def test_tags_of_another_object_version_are_not_trusted(self, store):
        data = pattern(PART + 1)
        store.write_bytes("k.bin", data)
        # A writer that lost a race tagged the object the winner completed.
        store.client.put_object_tagging(
            Bucket=store.bucket,
            Key="k.bin",
            Tagging={
                "TagSet": [
                    {"Key": "persisty-data-sha256", "Value": "0" * 64},
                    {"Key": "persisty-data-s3-etag", "Value": "not-this-one-2"},
                ]
            },
        )
        fresh = S3DataStore(store.bucket, client=store.client, save_computed_etags=False)
        assert fresh.read("k.bin").etag == sha256(data)  # hashed from the content instead

    def test_failed_tagging_still_publishes_and_readers_hash_the_content(self, store):
        def refuse(**kwargs):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "PutObjectTagging")

        store.client.meta.events.register("before-call.s3.PutObjectTagging", refuse)
        data = pattern(PART + 5)
        item = store.write_bytes("k.bin", data)
        assert item.etag == sha256(data)
        fresh = S3DataStore(store.bucket, client=store.client, save_computed_etags=False)
        assert fresh.read("k.bin").etag == sha256(data)
        assert fresh.read("k.bin").read_bytes() == data

    def test_a_stale_pending_upload_is_hashed_without_waiting(self, store):
        data = pattern(PART + 5)
        upload = store.client.create_multipart_upload(
            Bucket=store.bucket, Key="k.bin", Tagging="persisty-data-sha256=pending"
        )
        part = store.client.upload_part(
            Bucket=store.bucket, Key="k.bin", UploadId=upload["UploadId"], PartNumber=1, Body=data
        )
        store.client.complete_multipart_upload(
            Bucket=store.bucket,
            Key="k.bin",
            UploadId=upload["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
        )
        # Its writer died before tagging it: a reader waits at most a moment, then hashes.
        started = time.monotonic()
        fresh = S3DataStore(store.bucket, client=store.client, save_computed_etags=False)
        assert fresh.read("k.bin").etag == sha256(data)
        assert time.monotonic() - started < 10

    def test_publish_by_copy_uploads_to_a_temporary_key(self, tmp_path):
        with S3MotoBackend().make(str(tmp_path), publish_by_copy=True) as store:
            wire, data, item = replace_with_three_parts(store)
            ops = wire.ops()
            assert ops.count("UploadPart") == 3 and "PutObject" not in ops and "PutObjectTagging" not in ops
            # The upload goes to a temporary key; one server-side copy publishes it with the
            # hash, and the temporary object is deleted.
            (create,) = [p for name, p in wire.calls if name == "CreateMultipartUpload"]
            temp_key = create["Key"]
            assert temp_key.startswith(".persisty_data/uploads/")
            (copy,) = [p for name, p in wire.calls if name == "CopyObject"]
            assert copy["CopySource"] == {"Bucket": store.bucket, "Key": temp_key}
            assert copy["Key"] == "big.bin" and copy["MetadataDirective"] == "REPLACE"
            assert copy["Metadata"] == {"sha256": sha256(data)} and copy["ContentType"] == "application/x-test"
            assert [p["Key"] for name, p in wire.calls if name == "DeleteObject"] == [temp_key]
            head = store.client.head_object(Bucket=store.bucket, Key="big.bin")
            assert head["Metadata"]["sha256"] == sha256(data) == item.etag
            assert store.read("big.bin") == item
            assert item.read_bytes() == data
            assert s3_debris(store) == []

    def test_failed_publish_by_copy_keeps_old_object_and_leaves_nothing(self, tmp_path):
        with S3MotoBackend().make(str(tmp_path), publish_by_copy=True) as store:
            old = store.write_bytes("k.bin", b"old content")
            other_tool = boto3.client("s3", region_name=REGION)

            def lose_the_upload(params, **kwargs):
                # The completed temporary object disappears before the publishing copy.
                other_tool.delete_object(Bucket=store.bucket, Key=params["CopySource"]["Key"])

            store.client.meta.events.register("provide-client-params.s3.CopyObject", lose_the_upload)
            with pytest.raises(PersistyDataError):
                store.write_bytes("k.bin", pattern(PART + 1))
            assert s3_debris(store) == []
            assert store.read("k.bin") == old

    def test_remove_stale_uploads(self, store):
        from datetime import timedelta

        plain = boto3.client("s3", region_name=REGION)
        plain.create_multipart_upload(Bucket=store.bucket, Key=".persisty_data/uploads/dead")
        plain.put_object(Bucket=store.bucket, Key=".persisty_data/uploads/dead2", Body=b"x")
        assert len(s3_debris(store)) == 2
        # Only the upload goes: moto reports every upload as initiated in 2010.
        assert store.remove_stale_uploads(timedelta(days=1)) == 1
        assert store.remove_stale_uploads(timedelta(0)) == 1
        assert s3_debris(store) == []

    def test_exception_aborts_multipart_and_keeps_old_object(self, store):
        old = store.write_bytes("k.bin", b"old content")
        with pytest.raises(RuntimeError):
            with store.get_data_writer("k.bin") as writer:
                writer.write(pattern(2 * PART + 1))
                assert len(s3_debris(store)) == 1  # the upload really started
                raise RuntimeError("boom")
        assert s3_debris(store) == []
        assert store.read("k.bin") == old
        assert store.read("k.bin").read_bytes() == b"old content"

    def test_limit_violation_aborts_multipart_and_keeps_old_object(self, tmp_path):
        with S3MotoBackend().make(str(tmp_path), max_item_size=2 * PART) as store:
            old = store.write_bytes("k.bin", b"old content")
            with pytest.raises(ItemTooLargeError):
                with store.get_data_writer("k.bin") as writer:
                    writer.write(pattern(PART + 10))
                    assert len(s3_debris(store)) == 1
                    writer.write(pattern(PART))
            assert s3_debris(store) == []
            assert store.read("k.bin") == old

    def test_failed_part_aborts_multipart_and_keeps_old_object(self, server_store):
        store = server_store
        other_tool = server_client()
        old = store.write_bytes("k.bin", b"old content")
        with pytest.raises(StorageError):
            with store.get_data_writer("k.bin") as writer:
                writer.write(pattern(PART + 10))
                (upload,) = other_tool.list_multipart_uploads(Bucket=store.bucket)["Uploads"]
                # Someone aborts the upload under the writer: the next UploadPart really fails.
                other_tool.abort_multipart_upload(Bucket=store.bucket, Key="k.bin", UploadId=upload["UploadId"])
                writer.write(pattern(PART))
        assert s3_debris(store) == []
        assert store.read("k.bin") == old
        assert store.read("k.bin").read_bytes() == b"old content"

    def test_failed_completion_aborts_and_keeps_old_object(self, server_store):
        store = server_store
        old = store.write_bytes("k.bin", b"old content")
        other_tool = server_client()

        def lose_the_upload(params, **kwargs):
            # The upload vanishes (e.g. a lifecycle rule) just before completion.
            other_tool.abort_multipart_upload(Bucket=store.bucket, Key=params["Key"], UploadId=params["UploadId"])

        store.client.meta.events.register("provide-client-params.s3.CompleteMultipartUpload", lose_the_upload)
        wire = Wire(store.client)
        with pytest.raises(StorageError):
            store.write_bytes("k.bin", pattern(2 * PART + 10))
        assert wire.count("UploadPart") == 3 and wire.count("CompleteMultipartUpload") == 1
        assert wire.count("AbortMultipartUpload") == 1 and wire.count("CopyObject") == 0
        assert s3_debris(store) == []
        assert store.read("k.bin") == old

    def test_every_object_carries_its_content_type(self, store):
        store.write_bytes("a.json", b"{}")
        store.write_bytes("b.bin", b"x", "image/png")
        store.write_bytes("c.bin", pattern(PART + 1), "text/csv; charset=utf-8")
        store.copy_data_from(store, "b.bin", "d.bin")
        types = {
            key: store.client.head_object(Bucket=store.bucket, Key=key)["ContentType"]
            for key in ("a.json", "b.bin", "c.bin", "d.bin")
        }
        assert types == {
            "a.json": "application/json",
            "b.bin": "image/png",
            "c.bin": "text/csv; charset=utf-8",
            "d.bin": "image/png",
        }

    def test_versioned_bucket_keeps_no_intermediate_multipart_version(self):
        with moto_store(versioned=True) as store:
            store.write_bytes("v.bin", pattern(PART + 1))
            listing = store.client.list_object_versions(Bucket=store.bucket)
            assert [v["Key"] for v in listing["Versions"]] == ["v.bin"]
            assert not listing.get("DeleteMarkers")  # the temporary object left no trace
            assert store.read("v.bin").etag == sha256(pattern(PART + 1))


@contextmanager
def serve_http(handler: type) -> Iterator[str]:
    """A stdlib HTTP server for handler on 127.0.0.1 at a free port; yields its URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


class _IfMatchDroppingProxy(http.server.BaseHTTPRequestHandler):
    """Forwards every request to the moto server without its If-Match header, as some
    S3-compatible servers and caching proxies in front of S3 behave."""

    protocol_version = "HTTP/1.1"
    dropped = 0

    def _forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if self.headers.get("If-Match"):
            type(self).dropped += 1
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("if-match", "connection")}
        upstream = urlsplit(moto_server_endpoint())
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
        try:
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in ("transfer-encoding", "connection"):
                self.send_header(name, value)
        if response.getheader("Content-Length") is None:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _forward

    def log_message(self, *args):
        pass


class TestReads:
    def test_an_endpoint_ignoring_if_match_never_serves_newer_content(self, server_store):
        _IfMatchDroppingProxy.dropped = 0
        with serve_http(_IfMatchDroppingProxy) as proxy_url:
            store = S3DataStore(server_store.bucket, endpoint_url=proxy_url, session=server_session())
            server_store.write_bytes("c.bin", b"version 1")
            stale = store.read("c.bin")
            assert stale.read_bytes() == b"version 1"
            server_store.write_bytes("c.bin", b"version 2")  # same size: no length check catches it
            for read in (stale.read_bytes, lambda: stale.read_bytes(2, 3), lambda: stale.read_bytes(2, 0)):
                with pytest.raises(ContentChangedError, match="item_replaced"):
                    read()
            assert _IfMatchDroppingProxy.dropped >= 4  # the server never saw an If-Match
            assert store.read("c.bin").read_bytes() == b"version 2"

    def test_an_item_keeps_what_its_read_learnt_once_replaced(self, store):
        # Objects from another tool carry no hash: items learn it when first used.
        for key in ("read.txt", "listed/b.txt"):
            store.client.put_object(Bucket=store.bucket, Key=key, Body=b"first", ContentType="text/plain")
        read = store.read("read.txt")
        (listed,) = store.search_all(KeyPrefixFilter("listed/"))
        for item in (read, listed):
            assert item.read_bytes() == b"first"
            store.client.put_object(Bucket=store.bucket, Key=item.key, Body=b"second", ContentType="text/csv")
            assert item.etag == sha256(b"first")
            assert item.content_type == "text/plain"
        wire = Wire(store.client)
        assert store.read("read.txt").etag == sha256(b"second")  # the new version: hashed anew
        assert wire.count("GetObject") == 1

    def test_range_read_sends_a_range_header_for_just_those_bytes(self, store):
        data = pattern(3 * 1024 * 1024)
        item = store.write_bytes("r.bin", data)
        wire = Wire(store.client)
        assert item.read_bytes(1000, 5000) == data[1000:6000]
        (headers,) = wire.headers("GetObject")
        assert headers["range"] == "bytes=1000-5999"
        assert headers["if-match"] == item.s3_etag
        wire.clear()
        assert item.read_bytes(len(data) - 10) == data[-10:]
        assert wire.headers("GetObject")[0]["range"] == f"bytes={len(data) - 10}-{len(data) - 1}"
        wire.clear()
        assert item.read_bytes() == data
        assert "range" not in wire.headers("GetObject")[0]

    def test_reader_streams(self, store):
        data = pattern(2 * 1024 * 1024)
        item = store.write_bytes("s.bin", data)
        with item.get_data_reader() as reader:
            first = reader.read(1000)
            rest = reader.read()
        assert first + rest == data

    def test_empty_ranges_and_empty_items(self, store):
        item = store.write_bytes("e.bin", b"")
        assert item.read_bytes() == b""
        full = store.write_bytes("f.bin", b"abc")
        assert full.read_bytes(3) == b"" and full.read_bytes(1, 0) == b""
        with pytest.raises(InvalidRangeError):
            full.read_bytes(-1)

    def test_replaced_or_deleted_content_is_never_mixed(self, store):
        item = store.write_bytes("c.bin", b"version 1")
        store.write_bytes("c.bin", b"version 2")
        with pytest.raises(ContentChangedError):
            item.read_bytes()
        item = store.read("c.bin")
        store.delete("c.bin")
        with pytest.raises(ContentChangedError):
            item.read_bytes()


class TestListing:
    def test_listing_issues_no_head_per_object(self, store):
        for i in range(20):
            store.write_bytes(f"d/{i:02}.txt", b"x" * i)
        wire = Wire(store.client)
        page = store.search(limit=50)
        everything = list(store.search_all())
        assert store.count() == 20
        assert len(page.results) == 20 and len(everything) == 20
        assert [i.size for i in everything] == list(range(20))
        assert wire.count("HeadObject") == 0 and wire.count("GetObject") == 0
        # content type and etag load lazily, with one HEAD for both.
        item = everything[3]
        assert item.content_type == "text/plain"
        assert item.etag == sha256(b"xxx")
        assert wire.count("HeadObject") == 1

    def test_key_prefix_becomes_the_s3_prefix(self, store):
        for key in ("a/1", "a/2", "ab/3", "b/4"):
            store.write_bytes(key, b"x")
        wire = Wire(store.client)
        found = store.search(AttrFilter("key", AttrFilterOp.startswith, "a/"), limit=10)
        assert [i.key for i in found.results] == ["a/1", "a/2"]
        (params,) = [p for name, p in wire.calls if name == "ListObjectsV2"]
        assert params["Prefix"] == "a/" and params["MaxKeys"] == 10
        assert wire.count("HeadObject") == 0

    def test_paging_past_1000_objects(self, store):
        plain = boto3.client("s3", region_name=REGION)
        keys = sorted(f"p/{i:05}" for i in range(1005))
        for key in keys:
            plain.put_object(Bucket=store.bucket, Key=key, Body=b"")
        wire = Wire(store.client)
        assert [i.key for i in store.search_all()] == keys
        assert wire.count("ListObjectsV2") == 2  # 1000 + 5, followed by ContinuationToken
        assert store.count() == 1005
        wire.clear()
        seen, page_key, pages = [], None, 0
        while True:
            page = store.search(page_key=page_key, limit=100)
            seen.extend(i.key for i in page.results)
            pages += 1
            page_key = page.next_page_key
            if page_key is None:
                break
        assert seen == keys and pages == 11
        assert all(p["MaxKeys"] == 100 for name, p in wire.calls if name == "ListObjectsV2")
        assert wire.count("ListObjectsV2") == 11 and wire.count("HeadObject") == 0

    def test_filters_on_content_type_and_etag_head_each_object(self, store):
        store.write_bytes("f/a.txt", b"a")
        store.write_bytes("f/b.png", b"b")
        store.write_bytes("f/c.txt", b"c")
        wire = Wire(store.client)
        found = list(store.search_all(AttrFilter("content_type", AttrFilterOp.eq, "text/plain")))
        assert [i.key for i in found] == ["f/a.txt", "f/c.txt"]
        assert wire.count("HeadObject") == 3
        found = store.search(AttrFilter("etag", AttrFilterOp.eq, sha256(b"b"))).results
        assert [i.key for i in found] == ["f/b.png"]
        ordered = store.search(search_order=SearchOrder((SearchOrderAttr("content_type", desc=True),)))
        assert [i.key for i in ordered.results] == ["f/a.txt", "f/c.txt", "f/b.png"]
        assert store.count(AttrFilter("size", AttrFilterOp.eq, 1)) == 3

    def test_listing_data_filters_before_any_head(self, store):
        for i in range(6):
            store.write_bytes(f"c/{i}.txt", b"x" * (i % 3))
        wire = Wire(store.client)
        both = And((AttrFilter("size", AttrFilterOp.eq, 2), AttrFilter("content_type", AttrFilterOp.eq, "text/plain")))
        assert [i.key for i in store.search_all(both)] == ["c/2.txt", "c/5.txt"]
        assert wire.count("HeadObject") == 2

    def test_objects_that_are_not_items_are_skipped(self, store):
        plain = boto3.client("s3", region_name=REGION)
        for key in ("ok/1", "bad//2", "folder/", "ok/./3", ".persisty_data/x"):
            plain.put_object(Bucket=store.bucket, Key=key, Body=b"")
        assert [i.key for i in store.search_all()] == ["ok/1"]
        page = store.search(limit=1)
        assert [i.key for i in page.results] == ["ok/1"]
        assert store.count() == 1

    def test_prefix_stores_share_a_bucket(self):
        with moto_store() as whole:
            one = S3DataStore(whole.bucket, prefix="one", region_name=REGION)
            two = S3DataStore(whole.bucket, prefix="two/", region_name=REGION)
            one.write_bytes("x.txt", b"1")
            two.write_bytes("x.txt", b"2")
            assert [i.key for i in one.search_all()] == ["x.txt"]
            assert one.read("x.txt").read_bytes() == b"1"
            assert [i.key for i in whole.search_all()] == ["one/x.txt", "two/x.txt"]
            assert one.delete("x.txt") and two.read("x.txt") is not None
            with pytest.raises(InvalidKeyError):
                one.read("k" * 1020)  # fine as a key, too long for S3 with the prefix


class TestDelete:
    def test_delete_reports_whether_an_object_was_there(self, store):
        store.write_bytes("d.txt", b"x")
        wire = Wire(store.client)
        assert store.delete("d.txt") is True
        assert wire.headers("DeleteObject")[0]["if-match"]  # conditional on what the HEAD saw
        assert store.delete("d.txt") is False
        assert store.delete("never.txt") is False

    def test_versioned_bucket(self):
        with moto_store(versioned=True) as store:
            store.write_bytes("v.txt", b"1")
            store.write_bytes("v.txt", b"2")
            assert store.delete("v.txt") is True
            assert store.read("v.txt") is None
            assert store.delete("v.txt") is False  # the current version is a delete marker
            listing = store.client.list_object_versions(Bucket=store.bucket)
            assert len(listing["DeleteMarkers"]) == 1 and len(listing["Versions"]) == 2
            store.write_bytes("v.txt", b"3")
            assert store.read("v.txt").read_bytes() == b"3"
            assert store.delete("v.txt") is True

    def test_edit_batch_deletes(self, store):
        from persisty.batch_edit import BatchEdit

        store.write_bytes("a", b"1")
        results = store.edit_batch([BatchEdit(delete_key="a"), BatchEdit(delete_key="b")])
        assert [r.success for r in results] == [True, False]


class TestCopy:
    def test_same_bucket_copy_is_server_side(self, store):
        item = store.write_bytes("src.txt", b"some bytes", "text/x-src")
        wire = Wire(store.client)
        copied = store.copy_data_from(store, "src.txt", "dst.txt")
        assert wire.count("CopyObject") == 1
        assert not {"GetObject", "PutObject", "UploadPart"} & set(wire.ops())
        (params,) = [p for name, p in wire.calls if name == "CopyObject"]
        assert params["MetadataDirective"] == "REPLACE"
        assert params["CopySourceIfMatch"] == item.s3_etag
        assert params["Metadata"] == {"sha256": item.etag}
        assert copied.etag == item.etag and copied.content_type == "text/x-src"
        assert store.read("dst.txt") == copied
        assert copied.read_bytes() == b"some bytes"

    def test_copy_can_change_the_content_type_in_place(self, store):
        store.write_bytes("t.txt", b"abc")
        copied = store.copy_data_from(store, "t.txt", content_type="text/csv")
        assert store.read("t.txt").content_type == "text/csv" == copied.content_type

    def test_large_copy_between_buckets_uses_upload_part_copy(self):
        data = pattern(2 * PART + 7)
        with moto_store() as source, moto_store(copy_part_size=PART) as target:
            source.write_bytes("big.bin", data, "application/x-big")
            wire = Wire(target.client)
            copied = target.copy_data_from(source, "big.bin", "copy.bin")
            assert wire.count("UploadPartCopy") == 3
            ranges = [p["CopySourceRange"] for name, p in wire.calls if name == "UploadPartCopy"]
            assert ranges == [f"bytes=0-{PART - 1}", f"bytes={PART}-{2 * PART - 1}", f"bytes={2 * PART}-{2 * PART + 6}"]
            assert not {"GetObject", "PutObject", "UploadPart", "CopyObject"} & set(wire.ops())
            assert copied.etag == sha256(data)
            head = target.client.head_object(Bucket=target.bucket, Key="copy.bin")
            assert head["ContentType"] == "application/x-big" and head["Metadata"]["sha256"] == sha256(data)
            assert target.read("copy.bin").read_bytes() == data
            assert s3_debris(target) == []

    def test_changed_source_aborts_the_multipart_copy(self):
        with moto_store(copy_part_size=PART) as store:
            store.write_bytes("big.bin", pattern(2 * PART))
            stale = store.read("big.bin")
            store.write_bytes("big.bin", pattern(2 * PART, seed=1))
            with pytest.raises(ContentChangedError):
                store._copy_native(store, stale, "copy.bin", "application/octet-stream")
            assert store.read("copy.bin") is None and s3_debris(store) == []

    def test_source_replaced_during_a_copy_is_detected(self, store):
        # moto ignores x-amz-copy-source-if-match; S3's checksum of the copy shows it.
        store.write_bytes("src", b"version 1")
        source_item = store.read("src")
        other_tool = boto3.client("s3", region_name=REGION)

        def replace_source(params, **kwargs):
            if params["CopySource"]["Key"] == "src":
                other_tool.put_object(Bucket=store.bucket, Key="src", Body=b"version 2")

        store.client.meta.events.register("provide-client-params.s3.CopyObject", replace_source)
        with pytest.raises(ContentChangedError):
            store._copy_native(store, source_item, "dst", "text/plain")
        head = other_tool.head_object(Bucket=store.bucket, Key="dst")
        body = other_tool.get_object(Bucket=store.bucket, Key="dst")["Body"].read()
        assert head["Metadata"]["sha256"] == sha256(body)  # never another version's hash

    def test_copy_respects_the_target_limit(self):
        with moto_store() as source, moto_store(max_item_size=5) as target:
            source.write_bytes("x", b"123456")
            with pytest.raises(ItemTooLargeError):
                target.copy_data_from(source, "x")
            assert target.read("x") is None

    def test_copy_between_different_stores_streams(self, store, tmp_path):
        directory = DirectoryDataStore(str(tmp_path / "dir"), fsync=False)
        data = pattern(PART + 5)
        store.write_bytes("s.bin", data)
        wire = Wire(store.client)
        copied = directory.copy_data_from(store, "s.bin")
        assert wire.count("GetObject") == 1 and copied.etag == sha256(data)
        back = store.copy_data_from(directory, "s.bin", "back.bin")
        assert back.etag == sha256(data) and back.read_bytes() == data


class TestInterop:
    def test_plain_boto3_reads_what_the_store_wrote(self, server_store):
        data = pattern(PART + 99)
        server_store.write_bytes("i/small.json", b'{"a": 1}')
        server_store.write_bytes("i/big.bin", data, "application/x-big")
        plain = server_client()
        small = plain.get_object(Bucket=server_store.bucket, Key="i/small.json")
        assert small["Body"].read() == b'{"a": 1}' and small["ContentType"] == "application/json"
        big = plain.get_object(Bucket=server_store.bucket, Key="i/big.bin")
        assert big["Body"].read() == data and big["ContentType"] == "application/x-big"
        tags = plain.get_object_tagging(Bucket=server_store.bucket, Key="i/big.bin")["TagSet"]
        assert {"Key": "persisty-data-sha256", "Value": sha256(data)} in tags

    def test_aws_cli_reads_what_the_store_wrote(self, server_store, tmp_path):
        # The CLI installed with the dev requirements, next to this interpreter.
        aws = os.path.join(os.path.dirname(sys.executable), "aws")
        if not os.path.exists(aws):
            aws = shutil.which("aws")
        assert aws, "the aws CLI is a dev requirement (pip install awscli)"
        data = pattern(PART + 99)
        server_store.write_bytes("cli/big.bin", data, "application/x-big")
        server_store.write_bytes("cli/note.txt", b"hi there")
        env = dict(os.environ)
        for name in list(env):
            if name.startswith("AWS_"):
                del env[name]
        env.update(
            AWS_ACCESS_KEY_ID=CREDENTIALS["aws_access_key_id"],
            AWS_SECRET_ACCESS_KEY=CREDENTIALS["aws_secret_access_key"],
            AWS_DEFAULT_REGION=REGION,
            AWS_CONFIG_FILE=str(tmp_path / "none"),
            AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        )
        endpoint = ["--endpoint-url", moto_server_endpoint()]

        def cli(*args) -> bytes:
            return subprocess.run([aws, *endpoint, *args], env=env, capture_output=True, check=True, timeout=120).stdout

        target = tmp_path / "big.bin"
        cli("s3", "cp", f"s3://{server_store.bucket}/cli/big.bin", str(target))
        assert target.read_bytes() == data
        assert cli("s3", "cp", f"s3://{server_store.bucket}/cli/note.txt", "-") == b"hi there"
        head = json.loads(cli("s3api", "head-object", "--bucket", server_store.bucket, "--key", "cli/big.bin"))
        assert head["ContentType"] == "application/x-big"
        tags = json.loads(cli("s3api", "get-object-tagging", "--bucket", server_store.bucket, "--key", "cli/big.bin"))
        assert {"Key": "persisty-data-sha256", "Value": sha256(data)} in tags["TagSet"]
        # And the other way: a multipart upload by the CLI reads back through the store.
        upload = tmp_path / "up.bin"
        upload.write_bytes(pattern(9 * 1024 * 1024, seed=3))
        cli("s3", "cp", str(upload), f"s3://{server_store.bucket}/cli/up.bin", "--content-type", "video/mp4")
        item = server_store.read("cli/up.bin")
        assert item.content_type == "video/mp4"
        assert item.etag == sha256(upload.read_bytes())
        assert item.read_bytes() == upload.read_bytes()

    def test_objects_put_by_other_tools_are_items(self, server_store):
        store = server_store
        plain = server_client()
        plain.put_object(Bucket=store.bucket, Key="o/plain.csv", Body=b"a,b\n", ContentType="text/csv")
        plain.put_object(Bucket=store.bucket, Key="o/untyped", Body=b"??")
        data = pattern(2 * PART + 1, seed=7)
        plain.upload_fileobj(
            io.BytesIO(data),
            store.bucket,
            "o/multi.bin",
            Config=TransferConfig(multipart_threshold=PART, multipart_chunksize=PART, use_threads=False),
        )
        wire = Wire(store.client)
        listed = {i.key: i for i in store.search_all()}
        assert sorted(listed) == ["o/multi.bin", "o/plain.csv", "o/untyped"]
        assert wire.count("HeadObject") == 0
        plain_item = listed["o/plain.csv"]
        assert plain_item.content_type == "text/csv"
        assert plain_item.read_bytes() == b"a,b\n"
        # No x-amz-meta-sha256: the etag is computed once by streaming the object ...
        assert plain_item.etag == sha256(b"a,b\n")
        multi = store.read("o/multi.bin")
        assert multi.etag == sha256(data)
        assert multi.read_bytes() == data  # still readable after the etag was saved
        # ... and saved back in the object's metadata, so the next read costs no download.
        assert plain.head_object(Bucket=store.bucket, Key="o/multi.bin")["Metadata"]["sha256"] == sha256(data)
        assert plain.head_object(Bucket=store.bucket, Key="o/plain.csv")["ContentType"] == "text/csv"
        wire.clear()
        assert store.read("o/multi.bin").etag == sha256(data)
        assert wire.count("GetObject") == 0
        assert store.read("o/untyped").content_type == "binary/octet-stream"  # what S3 says

    def test_computed_etags_can_stay_out_of_the_bucket(self):
        with moto_store(save_computed_etags=False) as store:
            store.client.put_object(Bucket=store.bucket, Key="x", Body=b"abc")
            assert store.read("x").etag == sha256(b"abc")
            assert "sha256" not in store.client.head_object(Bucket=store.bucket, Key="x")["Metadata"]
            wire = Wire(store.client)
            assert store.read("x").etag == sha256(b"abc")  # cached in the process
            assert wire.count("GetObject") == 0


def _error_endpoint(status: int, code: str, message: str) -> type:
    """A handler for an S3-compatible endpoint that answers every request with one S3 error;
    its requests attribute counts what reached it."""
    body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()

    class ErrorEndpoint(http.server.BaseHTTPRequestHandler):
        requests = 0

        def _answer(self):
            type(self).requests += 1
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _answer

        def log_message(self, *args):
            pass

    return ErrorEndpoint


class TestErrors:
    EXPECTED = [
        (ClientError({"Error": {"Code": "NoSuchBucket"}}, "HeadObject"), ConfigurationError),
        (ClientError({"Error": {"Code": "AccessDenied"}}, "GetObject"), ForbiddenError),
        (
            ClientError({"Error": {"Code": "403"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "HeadObject"),
            ForbiddenError,
        ),
        (ClientError({"Error": {"Code": "AllAccessDisabled"}}, "GetObject"), ForbiddenError),
        (
            ClientError(
                {"Error": {"Code": "InvalidAccessKeyId"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "PutObject"
            ),
            ConfigurationError,
        ),
        (
            ClientError(
                {"Error": {"Code": "SignatureDoesNotMatch"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "PutObject"
            ),
            ConfigurationError,
        ),
        (
            ClientError({"Error": {"Code": "ExpiredToken"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "PutObject"),
            ConfigurationError,
        ),
        (
            ClientError(
                {"Error": {"Code": "PermanentRedirect"}, "ResponseMetadata": {"HTTPStatusCode": 301}}, "ListObjectsV2"
            ),
            ConfigurationError,
        ),
        (
            ClientError({"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "PutObject"),
            StorageUnavailableError,
        ),
        (ClientError({"Error": {"Code": "Throttling"}}, "PutObject"), StorageUnavailableError),
        (
            ClientError(
                {"Error": {"Code": "RequestTimeout"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "UploadPart"
            ),
            StorageUnavailableError,
        ),
        (
            ClientError({"Error": {"Code": "InternalError"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "PutObject"),
            StorageUnavailableError,
        ),
        (
            ClientError({"Error": {"Code": "Weird"}, "ResponseMetadata": {"HTTPStatusCode": 502}}, "PutObject"),
            StorageUnavailableError,
        ),
        (
            ClientError(
                {"Error": {"Code": "NotImplemented"}, "ResponseMetadata": {"HTTPStatusCode": 501}}, "PutObjectTagging"
            ),
            UnsupportedOperationError,
        ),
        (
            ClientError({"Error": {"Code": "501"}, "ResponseMetadata": {"HTTPStatusCode": 501}}, "HeadObject"),
            UnsupportedOperationError,
        ),
        (ClientError({"Error": {"Code": "PreconditionFailed"}}, "GetObject"), ContentChangedError),
        (ClientError({"Error": {"Code": "412"}}, "HeadObject"), ContentChangedError),
        (ClientError({"Error": {"Code": "NoSuchKey"}}, "GetObject"), ContentChangedError),
        (ClientError({"Error": {"Code": "InvalidRange"}}, "GetObject"), InvalidRangeError),
        (ClientError({"Error": {"Code": "EntityTooLarge"}}, "PutObject"), ItemTooLargeError),
        (ClientError({"Error": {"Code": "BadDigest"}}, "PutObject"), StorageError),
        (ClientError({"Error": {"Code": "NoSuchUpload"}}, "UploadPart"), StorageError),
        (ClientError({}, "PutObject"), StorageError),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), StorageUnavailableError),
        (ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"), StorageUnavailableError),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), StorageUnavailableError),
        (ResponseStreamingError(error="reset"), StorageUnavailableError),
        (IncompleteReadError(actual_bytes=1, expected_bytes=2), StorageUnavailableError),
        (NoCredentialsError(), ConfigurationError),
        (PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"), ConfigurationError),
        (CredentialRetrievalError(provider="sso", error_msg="x"), ConfigurationError),
        (NoRegionError(), ConfigurationError),
        (ParamValidationError(report="Invalid bucket name"), ConfigurationError),
        (FlexibleChecksumError(error_msg="mismatch"), StorageError),
    ]

    @pytest.mark.parametrize(
        "exc, expected", EXPECTED, ids=[f"{type(e).__name__}-{i}" for i, (e, _) in enumerate(EXPECTED)]
    )
    def test_botocore_exceptions_are_mapped(self, exc, expected):
        with pytest.raises(expected) as raised:
            with map_s3_errors("k", "files", "bkt"):
                raise exc
        assert type(raised.value) is expected
        assert raised.value.__cause__ is exc and raised.value.key == "k"

    def test_every_botocore_error_type_maps_to_ours(self):
        import botocore.exceptions as botocore_exceptions

        types = [
            t
            for t in vars(botocore_exceptions).values()
            if isinstance(t, type) and issubclass(t, (botocore_exceptions.BotoCoreError, ClientError))
        ]
        assert len(types) > 50
        for exc_type in types:
            exc = exc_type.__new__(exc_type)
            if isinstance(exc, ClientError):
                exc.response = {}
            assert isinstance(map_exception(exc), PersistyDataError), exc_type

    def test_other_exceptions_pass_through(self):
        with pytest.raises(KeyError):
            with map_s3_errors():
                raise KeyError("not ours to map")

    def test_unreachable_endpoint(self):
        store = S3DataStore(
            "bucket-x",
            endpoint_url=f"http://127.0.0.1:{free_port()}",
            region_name=REGION,
            session=boto3.session.Session(**CREDENTIALS),
            max_attempts=2,
            connect_timeout=2,
        )
        started = time.monotonic()
        for action in (lambda: store.read("x"), lambda: store.write_bytes("x", b"1"), lambda: list(store.search_all())):
            with pytest.raises(StorageUnavailableError):
                action()
        assert time.monotonic() - started < 30

    def test_throttling_after_retries(self):
        throttling = _error_endpoint(503, "SlowDown", "Please reduce your request rate.")
        with serve_http(throttling) as url:
            store = S3DataStore(
                "bucket-x",
                endpoint_url=url,
                region_name=REGION,
                session=boto3.session.Session(**CREDENTIALS),
                max_attempts=2,
            )
            with pytest.raises(StorageUnavailableError) as raised:
                store.write_bytes("x", b"1")
            assert "SlowDown" in str(raised.value)
            assert throttling.requests == 2  # botocore's standard mode retried once

    def test_not_implemented_is_unsupported_and_never_retried(self):
        not_implemented = _error_endpoint(501, "NotImplemented", "Not implemented here.")
        with serve_http(not_implemented) as url:
            built = S3DataStore("bucket-x", endpoint_url=url, session=server_session(), max_attempts=3)
            given = S3DataStore("bucket-x", client=server_session().client("s3", endpoint_url=url))  # legacy retries
            for store in (built, given):
                for action in (
                    lambda s=store: s.read("x"),
                    lambda s=store: s.write_bytes("x", b"1"),
                    lambda s=store: list(s.search_all()),
                    lambda s=store: s.delete("x"),
                ):
                    before = not_implemented.requests
                    with pytest.raises(UnsupportedOperationError, match="s3_not_implemented"):
                        action()
                    assert not_implemented.requests == before + 1  # permanent: asked once

    def test_missing_bucket_is_a_configuration_error(self, server_store):
        store = S3DataStore(
            new_bucket_name(),
            endpoint_url=moto_server_endpoint(),
            region_name=REGION,
            session=boto3.session.Session(**CREDENTIALS),
        )
        for action in (
            lambda: store.read("x"),
            lambda: store.write_bytes("x", b"1"),
            lambda: store.write_bytes("x", pattern(PART + 1)),
            lambda: list(store.search_all()),
            lambda: store.delete("x"),
        ):
            with pytest.raises(ConfigurationError, match="bucket_not_found"):
                action()

    def test_access_denied_is_forbidden(self, store):
        store.write_bytes("secret.txt", b"x")
        iam = boto3.client("iam", region_name=REGION)
        user = f"lister-{new_bucket_name()}"
        iam.create_user(UserName=user)
        # S3 authorizes ListObjectsV2 as s3:ListBucket (moto up to 5.2.5 too); moto 5.2.6
        # checks the operation's own name instead. Granting both keeps the test about our
        # mapping whichever moto is installed: reads, writes and deletes stay denied.
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["s3:ListBucket", "s3:ListObjectsV2"], "Resource": "*"}],
        }
        iam.put_user_policy(UserName=user, PolicyName="list-only", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        session = boto3.session.Session(
            aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
        )
        lister = S3DataStore(store.bucket, region_name=REGION, session=session)
        with enable_iam_authentication():
            assert [i.key for i in lister.search_all()] == ["secret.txt"]
            for action in (
                lambda: lister.read("secret.txt"),
                lambda: lister.write_bytes("new.txt", b"1"),
                lambda: lister.delete("secret.txt"),
            ):
                with pytest.raises(ForbiddenError):
                    action()
