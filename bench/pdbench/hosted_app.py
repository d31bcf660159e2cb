"""
The HTTP server of the hosted workload, run in its own process by uvicorn:

- /data/bench: persisty-data's DataStoreRoutes over a HostedDataStoreFactory on a
  DirectoryDataStore (signed multipart form upload, signed URL download);
- /bare/{key}: the baseline, plain starlette: POST streams the request body to a file
  (then fsync, as the store does), GET streams the file in 1 MiB reads (the same piece
  size as the hosted route; starlette's FileResponse, with 64 KiB pieces, is slower).
"""

import argparse
import os

SECRET = "pdbench-hosted-secret-0123456789abcdef"
STORE_NAME = "bench"


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

    routes = DataStoreRoutes([make_factory(root)]).create_routes()
    routes += [
        Route("/bare/{key:path}", bare_upload, methods=["POST"]),
        Route("/bare/{key:path}", bare_download, methods=["GET"]),
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
