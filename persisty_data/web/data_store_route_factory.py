"""Adds the hosted upload / download routes to servey's starlette app."""

from typing import Iterator

from servey.servey_starlette.route_factory.route_factory_abc import RouteFactoryABC
from starlette.routing import Route

from persisty_data.factory.data_store_factory_finder_abc import find_data_store_factories
from persisty_data.factory.hosted_data_store_factory import HostedDataStoreFactory
from persisty_data.web.data_store_routes import DataStoreRoutes


class DataStoreRouteFactory(RouteFactoryABC):
    priority = 120  # before servey's action routes (110)

    def create_routes(self) -> Iterator[Route]:
        hosted = [f for f in find_data_store_factories() if isinstance(f, HostedDataStoreFactory)]
        if hosted:
            yield from DataStoreRoutes(hosted).create_routes()
