"""Finding the data store factories of an app (the analogue of persisty's store finders)."""

from abc import ABC, abstractmethod
from typing import Dict, Iterator, List

from marshy.factory.impl_marshaller_factory import get_impls

from persisty_data.factory.data_store_factory_abc import DataStoreFactoryABC


class DataStoreFactoryFinderABC(ABC):
    @abstractmethod
    def find_data_store_factories(self) -> Iterator[DataStoreFactoryABC]:
        """The factories this finder knows of."""


def find_data_store_factories() -> List[DataStoreFactoryABC]:
    """Every factory of every registered finder, first one per name wins."""
    found: Dict[str, DataStoreFactoryABC] = {}
    for finder_class in get_impls(DataStoreFactoryFinderABC):
        for factory in finder_class().find_data_store_factories():
            found.setdefault(factory.name, factory)
    return list(found.values())
