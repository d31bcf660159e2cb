"""The app's data stores, found by persisty_data's ModuleDataStoreFactoryFinder."""

import os

from persisty_data.directory.directory_data_store import DirectoryDataStore
from persisty_data.factory.hosted_data_store_factory import HostedDataStoreFactory
from persisty_data.factory.owned_data_store_security import OwnedDataStoreSecurity

ROOT = os.environ["HOSTED_APP_ROOT"]
SECRET = os.environ["HOSTED_APP_SECRET"]
BASE_URL = os.environ.get("HOSTED_APP_BASE_URL", "")

attachments = HostedDataStoreFactory(
    DirectoryDataStore(os.path.join(ROOT, "attachments"), name="attachments", max_item_size=1024 * 1024),
    secret=SECRET,
    security=OwnedDataStoreSecurity(read_by_others=True),
    base_url=BASE_URL,
)
