"""Where the app keeps things, from the environment (all optional)."""

import os

HERE = os.path.dirname(os.path.abspath(__file__))

# The persisty-data configuration for the attachments store (docs/configuration.md).
# PERSISTY_DATA_CONFIG names another file; PERSISTY_DATA_ATTACHMENTS_* override settings.
CONFIG_PATH = os.environ.get("PERSISTY_DATA_CONFIG") or os.path.join(HERE, "persisty-data.toml")

# The messages: a SQL URL (SQLite by default, next to the attachments) or "mem".
DATABASE_URL = os.environ.get("MESSAGER_DATABASE_URL") or "sqlite:///" + os.path.join(HERE, "data", "messages.db")

# The demo users' shared password; generated (and logged) at start-up when unset.
PASSWORD_ENV = "MESSAGER_PASSWORD"

USERS = ("alice", "bob", "carol")
MAX_TEXT_LENGTH = 2000
TOKEN_LIFETIME_HOURS = 12
