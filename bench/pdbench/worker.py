"""
Runs one workload for one subject in a fresh process and prints its figures as one JSON
line: `python -m pdbench.worker '<spec as JSON>'`. A fresh process per case keeps cases
independent and makes the peak RSS growth of each case its own.
"""

import gc
import hashlib
import http.client
import json
import os
import random
import socket
import sys
import time
import traceback
import uuid
from typing import Dict, List
from urllib.parse import urlsplit

from pdbench.content import KiB, Pattern, hash_stream
from pdbench.memory import peak_rss_growth
from pdbench.subjects import PEER_PACKAGES, SUBJECTS, Unsupported

RESULT_PREFIX = "PDBENCH-RESULT "


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]


# region: large items
def run_large(subject, params: Dict) -> Dict:
    pattern = Pattern()
    results: Dict = {}
    warm_key = "warmup/item.bin"
    subject.write_large(warm_key, pattern, 64 * KiB)  # connections, tables, imports
    try:
        subject.read_large(warm_key)
    except Unsupported:
        pass
    subject.delete(warm_key)
    for size in params["sizes"]:
        # Small items are timed several times (the median counts): one millisecond-long
        # operation alone is mostly noise.
        repeat = max(1, min(25, params.get("repeat_bytes", 64 * 1024 * 1024) // size))
        expected = pattern.sha256(size)
        runs = []
        for index in range(repeat):
            runs.append(_large_once(subject, pattern, size, f"large/item-{size}-{index}.bin", expected))
        entry = {}
        for name in ("write_s", "commit_s", "read_s"):
            values = sorted(r[name] for r in runs if name in r)
            if values:
                entry[name] = values[len(values) // 2]
        for name in ("write_rss_growth", "read_rss_growth"):
            values = [r[name] for r in runs if name in r]
            if values:
                entry[name] = max(values)
        errors = [r["read_error"] for r in runs if "read_error" in r]
        if errors:
            entry["read_error"] = errors[0]
        entry["rss_method"] = runs[0]["rss_method"]
        entry["repeat"] = repeat
        results[str(size)] = entry
    return results


# endregion


def _large_once(subject, pattern: Pattern, size: int, key: str, expected: str) -> Dict:
    entry: Dict = {}
    gc.collect()
    os.sync()  # every write starts without other dirty pages waiting for the disk
    with peak_rss_growth() as memory:
        started = time.perf_counter()
        commit = subject.write_large(key, pattern, size)
        entry["write_s"] = time.perf_counter() - started
    entry["write_rss_growth"] = memory.growth_bytes
    if commit is not None:
        entry["commit_s"] = commit
    gc.collect()
    try:
        with peak_rss_growth() as memory:
            started = time.perf_counter()
            got = subject.read_large(key)
            entry["read_s"] = time.perf_counter() - started
        entry["read_rss_growth"] = memory.growth_bytes
        if got != (size, expected):
            entry["read_error"] = f"content mismatch: {got} != {(size, expected)}"
    except Unsupported:
        pass
    entry["rss_method"] = memory.method
    subject.delete(key)
    return entry


# region: many small items
def small_keys(count: int) -> List[str]:
    return [f"u{i % 100:02d}/item-{i:05d}.bin" for i in range(count)]


def run_small(subject, params: Dict) -> Dict:
    pattern = Pattern()
    count, size = params["count"], params["size"]
    keys = small_keys(count)
    datas = [pattern.small(i, size) for i in range(count)]
    subject.write_small("warmup/item.bin", b"w" * size)
    subject.read_small("warmup/item.bin")
    subject.delete("warmup/item.bin")
    gc.collect()
    result: Dict = {"count": count}
    started = time.perf_counter()
    for key, data in zip(keys, datas):
        subject.write_small(key, data)
    result["write_s"] = time.perf_counter() - started
    listings = []
    for _ in range(params.get("list_repeat", 3)):
        started = time.perf_counter()
        listed = subject.list_all()
        listings.append(time.perf_counter() - started)
        if listed != count:
            raise AssertionError(f"listed {listed} items, expected {count}")
    result["list_s"] = sorted(listings)[len(listings) // 2]
    order = list(range(count))
    random.Random(7).shuffle(order)
    started = time.perf_counter()
    for index in order:
        if subject.read_small(keys[index]) != datas[index]:
            raise AssertionError(f"content mismatch for {keys[index]}")
    result["read_s"] = time.perf_counter() - started
    started = time.perf_counter()
    for key in keys:
        subject.delete(key)
    result["delete_s"] = time.perf_counter() - started
    return result


# endregion


# region: range reads
def run_range(subject, params: Dict) -> Dict:
    pattern = Pattern()
    size, count, length = params["item_size"], params["count"], params["length"]
    big_key, small_key = "range/big.bin", "range/small.bin"
    subject.write_large(big_key, pattern, size)
    subject.write_large(small_key, pattern, length)
    rng = random.Random(11)
    offsets = [rng.randrange(0, size - length) for _ in range(count)]
    expected_small = pattern.range(0, length)
    for offset in offsets[:20]:  # warm up
        subject.read_range(big_key, offset, length)
        subject.read_range(small_key, 0, length)
    big, small = [], []
    for offset in offsets:  # interleaved, so drift hits both alike
        started = time.perf_counter()
        data = subject.read_range(big_key, offset, length)
        big.append(time.perf_counter() - started)
        if data != pattern.range(offset, length):
            raise AssertionError(f"range mismatch at {offset}")
        started = time.perf_counter()
        data = subject.read_range(small_key, 0, length)
        small.append(time.perf_counter() - started)
        if data != expected_small:
            raise AssertionError("small item mismatch")
    subject.delete(big_key)
    subject.delete(small_key)
    return {"range_latencies": percentiles(big), "small_latencies": percentiles(small)}


def percentiles(values: List[float]) -> Dict[str, float]:
    ordered = sorted(values)

    def at(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]

    return {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99)}


# endregion


# region: hosted HTTP
class _Multipart:
    """A multipart/form-data body: fields, then the file part, streamed from a pattern."""

    def __init__(self, fields: List, size: int):
        boundary = "pdbench-" + uuid.uuid4().hex
        self.content_type = f"multipart/form-data; boundary={boundary}"
        head = []
        for name, value in fields:
            head.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n')
        head.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="item.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        self.head = "".join(head).encode("utf-8")
        self.tail = f"\r\n--{boundary}--\r\n".encode("ascii")
        self.length = len(self.head) + size + len(self.tail)


class _Raw:
    """A raw request body (no multipart envelope) of size bytes."""

    content_type = "application/octet-stream"
    head = tail = b""

    def __init__(self, size: int):
        self.length = size


CHECKED = ("hosted", "bare_store")  # subjects that store what was sent: answers are verified


class HostedClient:
    def __init__(self, env: Dict, subject: str):
        from pdbench.hosted_app import bare_root, make_factory

        self.subject = subject
        self.root = env["hosted_root"]
        url = urlsplit(env["hosted_url"])
        self.connection = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
        # The body goes out in several send() calls (form head, content, tail): without
        # TCP_NODELAY, Nagle's algorithm would hold the small last segment for an ACK.
        self.connection.connect()
        self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.factory = make_factory(self.root)  # same secret and store: makes forms and URLs
        self.store = self.factory.get_store()
        self.bare = bare_root(self.root)

    def _fields(self, key: str) -> List:
        if self.subject == "bare":
            return [("key", key)]
        form = self.factory.get_upload_form(key, None, "application/octet-stream")
        return [(f.name, f.value) for f in form.fields]

    def prepare_upload(self, key: str, size: int):
        if self.subject == "bare_store":
            return f"/bare-store/{key}", _Raw(size)  # a plain endpoint: the raw body
        body = _Multipart(self._fields(key), size)
        path = f"/bare/{key}" if self.subject == "bare" else urlsplit(self.factory.upload_path).path
        return path, body

    def upload(self, path: str, body: _Multipart, blocks) -> Dict:
        connection = self.connection
        connection.putrequest("POST", path)
        connection.putheader("Content-Type", body.content_type)
        connection.putheader("Content-Length", str(body.length))
        connection.endheaders()
        connection.send(body.head)
        for view in blocks:
            connection.send(view)
        connection.send(body.tail)
        response = connection.getresponse()
        data = response.read()
        if response.status not in (200, 201, 204):
            raise RuntimeError(f"upload failed: {response.status} {data[:200]!r}")
        return json.loads(data) if data else {}

    def download_path(self, key: str) -> str:
        if self.subject == "bare":
            return f"/bare/{key}"
        if self.subject == "bare_store":
            return f"/bare-store/{key}"
        url = urlsplit(self.factory.get_download_url(key, None))
        return f"{url.path}?{url.query}"

    def download(self, path: str):
        self.connection.request("GET", path)
        response = self.connection.getresponse()
        if response.status != 200:
            raise RuntimeError(f"download failed: {response.status} {response.read()[:200]!r}")
        return hash_stream(response)

    def delete(self, key: str) -> None:
        if self.subject == "bare":
            os.unlink(os.path.join(self.bare, *key.split("/")))
        else:
            self.store.delete(key)


def run_hosted(env: Dict, subject: str, params: Dict) -> Dict:
    pattern = Pattern()
    size, count, small_size = params["size"], params["count"], params["small_size"]
    run = uuid.uuid4().hex[:8]
    result: Dict = {}
    client = HostedClient(env, subject)
    big_key = f"big-{run}/item.bin"
    expected = pattern.sha256(size)
    small = [(f"small-{run}/u{i % 10}/item-{i:04d}.bin", pattern.small(i, small_size)) for i in range(count)]

    if subject == "direct":
        store = client.store
        started = time.perf_counter()
        with store.get_data_writer(big_key, "application/octet-stream") as writer:
            for view in pattern.blocks(size):
                writer.write(view)
        result["upload_large_s"] = time.perf_counter() - started
        started = time.perf_counter()
        with store.read(big_key).get_data_reader() as reader:
            got = hash_stream(reader)
        result["download_large_s"] = time.perf_counter() - started
        if got != (size, expected):
            raise AssertionError("direct read mismatch")
        started = time.perf_counter()
        for key, data in small:
            store.write_bytes(key, data, "application/octet-stream")
        result["upload_small_s"] = time.perf_counter() - started
        started = time.perf_counter()
        for key, data in small:
            if store.read(key).read_bytes() != data:
                raise AssertionError("direct small mismatch")
        result["download_small_s"] = time.perf_counter() - started
    else:
        warm_path, warm_body = client.prepare_upload(f"warm-{run}.bin", 1024)
        client.upload(warm_path, warm_body, [pattern.small(0, 1024)])
        client.download(client.download_path(f"warm-{run}.bin"))
        client.delete(f"warm-{run}.bin")
        path, body = client.prepare_upload(big_key, size)
        started = time.perf_counter()
        answer = client.upload(path, body, pattern.blocks(size))
        result["upload_large_s"] = time.perf_counter() - started
        if subject in CHECKED and (answer.get("etag"), answer.get("size")) != (expected, size):
            raise AssertionError(f"hosted upload mismatch: {answer}")
        download = client.download_path(big_key)
        started = time.perf_counter()
        got = client.download(download)
        result["download_large_s"] = time.perf_counter() - started
        if subject in CHECKED and got != (size, expected):
            raise AssertionError("hosted download mismatch")
        uploads = [client.prepare_upload(key, len(data)) + (data,) for key, data in small]
        started = time.perf_counter()
        for path, body, data in uploads:
            client.upload(path, body, [data])
        result["upload_small_s"] = time.perf_counter() - started
        downloads = [(client.download_path(key), data) for key, data in small]
        started = time.perf_counter()
        for path, data in downloads:
            if subject in CHECKED and client.download(path) != (len(data), hashlib.sha256(data).hexdigest()):
                raise AssertionError("hosted small download mismatch")
            elif subject == "bare":
                client.download(path)
        result["download_small_s"] = time.perf_counter() - started
    client.delete(big_key)
    for key, _ in small:
        client.delete(key)
    result.update(size=size, count=count, small_size=small_size)
    return result


# endregion


def run(spec: Dict) -> Dict:
    workload, name, env, params = spec["workload"], spec["subject"], spec["env"], spec["params"]
    if workload == "hosted":
        return run_hosted(env, name, params)
    package = PEER_PACKAGES.get(name)
    if package is not None:
        try:
            __import__(package)
        except ImportError as exc:
            return {"unsupported": f"not installed: {_error(exc)}"}
    subject = SUBJECTS[name](env)
    subject.setup()
    try:
        if workload == "large":
            return run_large(subject, params)
        if workload == "small":
            return run_small(subject, params)
        if workload == "range":
            return run_range(subject, params)
        raise ValueError(f"unknown workload {workload}")
    finally:
        subject.teardown()


def main() -> None:
    spec = json.loads(sys.argv[1])
    try:
        result = run(spec)
    except Unsupported as exc:
        result = {"unsupported": str(exc) or "cannot do this workload"}
    except BaseException as exc:  # pylint: disable=broad-except
        traceback.print_exc()
        result = {"error": _error(exc)}
    library = sys.modules.get("persisty_data")
    if library is not None:
        result["_library"] = os.path.dirname(os.path.dirname(os.path.abspath(library.__file__)))
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
