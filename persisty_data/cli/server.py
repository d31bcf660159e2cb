"""``persisty-data serve``: a starlette app for the configured stores, run by uvicorn."""

import logging
from typing import List

from persisty_data.config.data_config import DataConfig
from persisty_data.errors import ConfigurationError

logger = logging.getLogger(__name__)


def create_app(config: DataConfig, actions: bool = True):
    """
    A starlette app with:

    - ``GET /health``: ``{"status": "ok", "stores": [...]}``;
    - the hosted upload / download routes (``POST {path_prefix}/{store}``, ``GET / HEAD
      {path_prefix}/{store}/{key}``) of every store whose factory is hosted;
    - when ``actions`` is set, the servey actions of every store (``/actions/<store>...``:
      metadata read / search / count / delete, upload form, download URL), authorized by
      servey's Bearer JWT (JWT_SECRET_KEY), as in a servey app.

    Our errors are answered as JSON (DataErrorMiddleware).
    """
    try:
        from starlette.applications import Starlette
        from starlette.middleware import Middleware
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import BaseRoute, Route

        from persisty_data.factory.hosted_data_store_factory import HostedDataStoreFactory
        from persisty_data.web.data_store_routes import DataStoreRoutes
        from persisty_data.web.error_middleware import DataErrorMiddleware
    except ModuleNotFoundError as exc:
        raise ConfigurationError(f"serve needs the server extra ({exc}): pip install 'persisty-data[server]'") from None

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
    try:
        import uvicorn
    except ModuleNotFoundError as exc:
        raise ConfigurationError(f"serve needs the server extra ({exc}): pip install 'persisty-data[server]'") from None
    app = create_app(config, actions)
    uvicorn.run(app, host=host, port=port, log_level=log_level, lifespan="off")
