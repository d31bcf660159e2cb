"""
messager: a small persisty / servey app where users sign in, post messages and attach
files. Attachments live in the persisty-data store ``attachments``, declared in
``persisty-data.toml`` next to this file (a directory store by default; chunk rows in
SQLite / PostgreSQL, or S3, by configuration alone).

Run it from the repository root (``bash scripts/example`` does all of this)::

    PYTHONPATH=examples SERVEY_MAIN=messager \\
        uvicorn servey.servey_starlette.starlette_app:app --host 127.0.0.1 --port 8000

- ``messager.store``: the ``Message`` records (persisty, SQLite by default);
- ``messager.actions``: ``sign_in``, ``post_message`` and ``latest_messages``;
- ``messager.data_store``: the ``attachments`` factory (persisty-data adds its actions
  and its ``/data`` routes);
- ``messager.web`` (registered by ``marshy_config_messager``): the page at ``/``.
"""
