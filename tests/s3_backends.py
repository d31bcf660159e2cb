"""
S3 backends for the conformance suite: moto in-process (mock_aws) and moto's server over
real HTTP on 127.0.0.1, each with a fresh uuid bucket per store. Merged into
tests.backends.BACKENDS by the lead.
"""

import atexit
import logging
import threading
import uuid
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional

import boto3
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

from persisty_data.s3.s3_data_store import MIN_PART_SIZE, TEMP_FOLDER, S3DataStore
from tests.backend_base import Backend, flip_byte

REGION = "us-east-1"  # passed explicitly: AWS_REGION in the environment would switch persisty to DynamoDB
PART_SIZE = MIN_PART_SIZE  # the suite's several-MiB round trip then goes up as a multipart upload
logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto server's request log

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def new_bucket_name() -> str:
    return f"test-{uuid.uuid4().hex}"


def s3_debris(store: S3DataStore) -> List[str]:
    """In-progress multipart uploads and temporary upload objects under the store's prefix."""
    client = store.client
    uploads = client.list_multipart_uploads(Bucket=store.bucket, Prefix=store.prefix).get("Uploads") or ()
    temp = client.list_objects_v2(Bucket=store.bucket, Prefix=store.prefix + TEMP_FOLDER).get("Contents") or ()
    return sorted([f"upload:{u['Key']}:{u['UploadId']}" for u in uploads] + [f"temp:{o['Key']}" for o in temp])


def empty_and_delete_bucket(client, bucket: str) -> None:
    for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads") or ():
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    while True:
        page = client.list_object_versions(Bucket=bucket, MaxKeys=1000)
        entries = (page.get("Versions") or []) + (page.get("DeleteMarkers") or [])
        if not entries:
            break
        for start in range(0, len(entries), 1000):
            objects = [{"Key": e["Key"], "VersionId": e["VersionId"]} for e in entries[start : start + 1000]]
            client.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
    client.delete_bucket(Bucket=bucket)


def corrupt_object(store: S3DataStore, key: str) -> None:
    """Rewrite the object with one byte flipped, keeping its content type and metadata (x-amz-meta-sha256)."""
    client = store.client
    s3_key = store.prefix + key
    response = client.get_object(Bucket=store.bucket, Key=s3_key)
    client.put_object(
        Bucket=store.bucket,
        Key=s3_key,
        Body=flip_byte(response["Body"].read()),
        ContentType=response["ContentType"],
        Metadata=response["Metadata"],
    )


# region: moto in-process
_mock_lock = threading.Lock()
_mock = None
_mock_users = 0
_process_request = BotocoreStubber.process_request
_request_lock = threading.RLock()


def _one_request_at_a_time(self, request):
    # moto is not thread safe: a PutObject replacing a key closes the old key's buffer
    # while a concurrent HEAD reads it (ValueError: I/O operation on closed file). S3
    # serves concurrent requests; moto (here and in the server below) takes them in turn.
    with _request_lock:
        return _process_request(self, request)


@contextmanager
def moto_in_process() -> Iterator[None]:
    """
    mock_aws, shared by nested users. It never resets moto's state: that state is global
    to the process and also serves the in-process moto server, whose buckets may be in
    use (module-scoped fixtures) while an in-process test starts or stops. Each user
    deletes its own bucket instead.
    """
    global _mock, _mock_users
    with _mock_lock:
        if _mock_users == 0:
            _mock = mock_aws()
            _mock.start(reset=False)
            BotocoreStubber.process_request = _one_request_at_a_time
        _mock_users += 1
    try:
        yield
    finally:
        with _mock_lock:
            _mock_users -= 1
            if _mock_users == 0 and _mock is not None:
                BotocoreStubber.process_request = _process_request
                _mock.stop(remove_data=False)
                _mock = None


class S3MotoBackend(Backend):
    name = "s3_moto"
    boundary = PART_SIZE

    @contextmanager
    def make(self, tmp_dir: str, **options) -> Iterator[S3DataStore]:
        options.setdefault("part_size", PART_SIZE)
        with moto_in_process():
            bucket = new_bucket_name()
            client = boto3.client("s3", region_name=REGION)
            client.create_bucket(Bucket=bucket)
            try:
                yield S3DataStore(bucket, name="files", region_name=REGION, **options)
            finally:
                empty_and_delete_bucket(client, bucket)

    def debris(self, store: S3DataStore) -> List[str]:
        return s3_debris(store)

    def corrupt(self, store: S3DataStore, key: str) -> None:
        corrupt_object(store, key)


# endregion


# region: moto server over HTTP
class _SerializingMotoServer(ThreadedMotoServer):
    """moto's threaded server, handling one request at a time (moto's S3 is not thread safe)."""

    def _server_entry(self) -> None:
        app = DomainDispatcherApplication(create_backend_app)

        def serialized(environ, start_response):
            with _request_lock:
                return app(environ, start_response)

        self._server = make_server(self._ip_address, self._port, serialized, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


_server_lock = threading.Lock()
_server: Optional[ThreadedMotoServer] = None
_endpoint_url: Optional[str] = None


def moto_server_endpoint() -> str:
    """The session-wide moto server (127.0.0.1, a free port), started on first use."""
    global _server, _endpoint_url
    with _server_lock:
        if _server is None:
            server = _SerializingMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            server.start()
            host, port = server.get_host_and_port()
            _server, _endpoint_url = server, f"http://{host}:{port}"
            atexit.register(_stop_server)
        assert _endpoint_url is not None
        return _endpoint_url


def _stop_server() -> None:
    global _server
    with _server_lock:
        if _server is not None:
            _server.stop()
            _server = None


def server_session() -> boto3.session.Session:
    return boto3.session.Session(region_name=REGION, **CREDENTIALS)


def server_client():
    """A plain boto3 client for the moto server (what another tool would use)."""
    return server_session().client("s3", endpoint_url=moto_server_endpoint())


class S3MotoServerBackend(Backend):
    name = "s3_moto_server"
    boundary = PART_SIZE

    @contextmanager
    def make(self, tmp_dir: str, **options) -> Iterator[S3DataStore]:
        options.setdefault("part_size", PART_SIZE)
        endpoint_url = moto_server_endpoint()
        client = server_client()
        bucket = new_bucket_name()
        client.create_bucket(Bucket=bucket)
        try:
            # Configured like a user pointing the store at MinIO: endpoint URL and region.
            yield S3DataStore(
                bucket,
                name="files",
                endpoint_url=endpoint_url,
                region_name=REGION,
                session=server_session(),
                **options,
            )
        finally:
            empty_and_delete_bucket(client, bucket)

    def debris(self, store: S3DataStore) -> List[str]:
        return s3_debris(store)

    def corrupt(self, store: S3DataStore, key: str) -> None:
        corrupt_object(store, key)


# endregion

S3_BACKENDS: Dict[str, type] = {
    "s3_moto": S3MotoBackend,
    "s3_moto_server": S3MotoServerBackend,
}
