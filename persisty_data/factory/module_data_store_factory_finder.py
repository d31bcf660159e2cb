"""Finds data store factories declared in ``<main>.data_store`` (like persisty's ``<main>.store``)."""

import importlib
import logging
import os
import pkgutil
from typing import Iterator

from persisty_data.factory.data_store_factory_abc import DataStoreFactoryABC
from persisty_data.factory.data_store_factory_finder_abc import DataStoreFactoryFinderABC

LOGGER = logging.getLogger(__name__)


def data_store_module_name() -> str:
    root = (
        os.environ.get("PERSISTY_DATA_MAIN")
        or os.environ.get("PERSISTY_MAIN")
        or os.environ.get("SERVEY_MAIN")
        or "servey_main"
    )
    return f"{root}.data_store"


class ModuleDataStoreFactoryFinder(DataStoreFactoryFinderABC):
    """
    Module-level DataStoreFactoryABC instances in the ``data_store`` module (or package
    and its submodules) of PERSISTY_DATA_MAIN, else PERSISTY_MAIN, else SERVEY_MAIN.
    """

    def find_data_store_factories(self) -> Iterator[DataStoreFactoryABC]:
        name = data_store_module_name()
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                LOGGER.debug("no data store module %s", name)
                return
            raise
        modules = [module]
        if hasattr(module, "__path__"):
            for info in pkgutil.walk_packages(module.__path__, module.__name__ + "."):
                modules.append(importlib.import_module(info.name))
        seen = set()
        for mod in modules:
            for value in vars(mod).values():
                if isinstance(value, DataStoreFactoryABC) and id(value) not in seen:
                    seen.add(id(value))
                    yield value
