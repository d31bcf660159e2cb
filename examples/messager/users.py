"""
Demo users: alice, bob and carol, sharing one password (MESSAGER_PASSWORD, generated and
logged at start-up when unset). Tokens are servey JWTs (HS256 over JWT_SECRET_KEY).

DemoUserAuthenticator replaces servey's debug authenticator (a "root" user with a
temporary password) for servey's own ``POST /login`` too: this app has no root user.
"""

import hmac
import logging
import os
import secrets
from datetime import datetime, timedelta, timezone
from typing import Optional, Tuple

from servey.security.authenticator.password_authenticator_abc import PasswordAuthenticatorABC
from servey.security.authorization import Authorization
from servey.security.authorizer.authorizer_factory_abc import get_default_authorizer

from messager.settings import PASSWORD_ENV, TOKEN_LIFETIME_HOURS, USERS

LOGGER = logging.getLogger(__name__)


def _demo_password() -> str:
    password = os.environ.get(PASSWORD_ENV)
    if not password:
        password = secrets.token_urlsafe(9)
        os.environ[PASSWORD_ENV] = password  # one password per process
        LOGGER.warning(
            "%s is not set: sign in as %s with the generated password %s",
            PASSWORD_ENV,
            ", ".join(USERS),
            password,
        )
    return password


PASSWORD = _demo_password()


class DemoUserAuthenticator(PasswordAuthenticatorABC):
    priority = 200  # above servey's RootPasswordAuthenticator (100)

    def authenticate(self, username: str, password: str) -> Optional[Authorization]:
        # compare_digest throughout: a wrong user name costs what a wrong password does
        known = any(hmac.compare_digest(username.encode(), user.encode()) for user in USERS)
        right = hmac.compare_digest(password.encode(), PASSWORD.encode())
        if not (known and right):
            return None
        now = datetime.now(timezone.utc).replace(microsecond=0)
        return Authorization(username, frozenset(), now, now + timedelta(hours=TOKEN_LIFETIME_HOURS))


def sign_in(username: str, password: str) -> Optional[Tuple[str, Authorization]]:
    """A token for a demo user and what it grants, or None."""
    authorization = DemoUserAuthenticator().authenticate(username, password)
    if authorization is None:
        return None
    return get_default_authorizer().encode(authorization), authorization
