"""``persisty-data serve``: a starlette app for the configured stores, run by uvicorn."""

import importlib
import logging
from typing import List

from persisty_data.config.data_config import DataConfig

logger = logging.getLogger(__name__)

# What serve needs, imported before anything starts so that a missing one is named at
# once. servey imports requests only to register its REST routes, and without it
# registers none, silently: requests is checked here by name.
SERVER_MODULES = ("starlette", "uvicorn", "python_multipart", "requests")


def require_server_modules() -> None:
    """Raise ModuleNotFoundError (with its module's name) if a module serve needs is missing."""
    for name in SERVER_MODULES:
        importlib.import_module(name)


def create_app(config: DataConfig, actions: bool = True):
    """
    A starlette app with:

    - ``GET /health``: ``{"status": "ok", "stores": [...]}``;
    - the hosted upload / download routes (``POST {path_prefix}/{store}``, ``GET / HEAD
      {path_prefix}/{store}/{key}``) of every store whose factory is hosted;
    - when ``actions`` is set, the servey actions of every store (``/actions/<store>...``:
      metadata read / search / count / delete, upload form, download URL), authorized by
      servey's Bearer JWT (JWT_SECRET_KEY), as in a servey app.

    Our errors are answered as JSON (DataErrorMiddleware). A missing dependency raises
    ImportError: the CLI names it (persisty_data.cli.main).
    """
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import BaseRoute, Route

    from persisty_data.factory.hosted_data_store_factory import HostedDataStoreFactory
    from persisty_data.web.data_store_routes import DataStoreRoutes
    from persisty_data.web.error_middleware import DataErrorMiddleware

    factories = config.factories
    names = list(factories)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "stores": names})

    routes: List[BaseRoute] = [Route("/health", health, methods=["GET"])]
    hosted = [f for f in factories.values() if isinstance(f, HostedDataStoreFactory)]
    if hosted:
        routes.extend(DataStoreRoutes(hosted).create_routes())
    if actions:
        routes.extend(_action_routes(list(factories.values())))
    return Starlette(routes=routes, middleware=[Middleware(DataErrorMiddleware)])


def _action_routes(factories) -> list:
    from servey.servey_starlette.route_factory.action_route_factory import ActionRouteFactory

    from persisty_data.web.data_store_actions import create_data_store_actions

    route_factory = ActionRouteFactory()
    routes = []
    for factory in factories:
        for action in create_data_store_actions(factory):
            route = route_factory.create_route(action)
            if route is not None:
                routes.append(route)
    return routes


def serve(config: DataConfig, host: str, port: int, log_level: str, actions: bool = True) -> None:
    import uvicorn

    app = create_app(config, actions)
    uvicorn.run(app, host=host, port=port, log_level=log_level, lifespan="off")
