"""
The app's data stores, found by persisty-data in ``<SERVEY_MAIN>.data_store``: every
module-level factory gets its servey actions (``attachments_upload_form``,
``attachments_download_url``, ``attachments_read`` / ``_search`` / ``_delete``...) and,
for hosted factories, the upload / download routes under ``/data``.

The store is declared in ``persisty-data.toml`` (or the file named by
PERSISTY_DATA_CONFIG) and the environment; a bad setting stops the app at start-up.
"""

from messager.settings import CONFIG_PATH
from persisty_data.config.data_config import load_config

config = load_config(CONFIG_PATH)
attachments = config.get_factory("attachments")
