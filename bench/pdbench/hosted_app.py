"""
The HTTP server of the hosted workload, run in its own process by uvicorn:

- /data/bench: persisty-data's DataStoreRoutes over a HostedDataStoreFactory on a
  DirectoryDataStore (signed multipart form upload, signed URL download);
- /bare-store/{key}: the baseline of the targets, a plain starlette streaming endpoint on
  the same store: POST streams the raw request body into store.get_data_writer (1 MiB per
  hop to a worker thread, as a careful app would: blocking I/O must leave the event loop;
  a body of one batch costs one hop, write and close together), GET streams
  store.read(key).get_data_reader() in 1 MiB pieces. No multipart, no signature: what is
  left between it and /data/bench is what the hosted routes add.
- /bare/{key}: a reference below the store: POST writes the request body to a file on the
  event loop (then fsync), GET streams the file in 1 MiB reads (the same piece size as
  the hosted route; starlette's FileResponse, with 64 KiB pieces, is slower). No hash, no
  atomic publish, no thread.
"""

import argparse
import os

SECRET = "pdbench-hosted-secret-0123456789abcdef"
STORE_NAME = "bench"
BATCH_BYTES = 1024 * 1024


def store_root(root: str) -> str:
    return os.path.join(root, "hosted-store")


def bare_root(root: str) -> str:
    return os.path.join(root, "bare")


def make_factory(root: str):
    from persisty.security.store_security import UNSECURED

    from persisty_data.directory.directory_data_store import DirectoryDataStore
    from persisty_data.factory.hosted_data_store_factory import HostedDataStoreFactory

    return HostedDataStoreFactory(
        DirectoryDataStore(store_root(root), name=STORE_NAME), secret=SECRET, security=UNSECURED
    )


def make_app(root: str):
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    from persisty_data.web.data_store_routes import DataStoreRoutes

    bare = bare_root(root)
    os.makedirs(bare, exist_ok=True)

    def bare_path(request: Request) -> str:
        return os.path.join(bare, *request.path_params["key"].split("/"))

    async def bare_upload(request: Request) -> Response:
        path = bare_path(request)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        size = 0
        with open(path, "wb") as file:
            async for chunk in request.stream():
                file.write(chunk)
                size += len(chunk)
            file.flush()
            os.fsync(file.fileno())
        return JSONResponse({"size": size}, status_code=201)

    def read_file(path: str):
        with open(path, "rb") as file:
            while True:
                data = file.read(1024 * 1024)
                if not data:
                    return
                yield data

    async def bare_download(request: Request) -> Response:
        path = bare_path(request)
        size = os.stat(path).st_size
        return StreamingResponse(
            read_file(path), headers={"Content-Length": str(size)}, media_type="application/octet-stream"
        )

    factory = make_factory(root)
    store = factory.get_store()

    async def bare_store_upload(request: Request) -> Response:
        writer = store.get_data_writer(request.path_params["key"], "application/octet-stream")
        try:
            batch, size = [], 0
            async for chunk in request.stream():
                batch.append(chunk)
                size += len(chunk)
                if size >= BATCH_BYTES:
                    await run_in_threadpool(writer.write, b"".join(batch))
                    batch, size = [], 0

            def finish() -> None:
                if batch:
                    writer.write(b"".join(batch))
                writer.close()

            await run_in_threadpool(finish)
        except BaseException:
            writer.abort()
            raise
        item = writer.item
        return JSONResponse({"size": item.size, "etag": item.etag}, status_code=201)

    def read_item(reader):
        with reader:
            while True:
                data = reader.read(BATCH_BYTES)
                if not data:
                    return
                yield data

    async def bare_store_download(request: Request) -> Response:
        item = await run_in_threadpool(store.read, request.path_params["key"])
        if item is None:
            return Response(status_code=404)
        reader = await run_in_threadpool(item.get_data_reader)
        return StreamingResponse(
            read_item(reader), headers={"Content-Length": str(item.size)}, media_type=item.content_type
        )

    routes = DataStoreRoutes([factory]).create_routes()
    routes += [
        Route("/bare/{key:path}", bare_upload, methods=["POST"]),
        Route("/bare/{key:path}", bare_download, methods=["GET"]),
        Route("/bare-store/{key:path}", bare_store_upload, methods=["POST"]),
        Route("/bare-store/{key:path}", bare_store_download, methods=["GET"]),
    ]
    return Starlette(routes=routes)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    import uvicorn

    uvicorn.run(
        make_app(args.root), host="127.0.0.1", port=args.port, log_level="warning", lifespan="off", access_log=False
    )


if __name__ == "__main__":
    main()
