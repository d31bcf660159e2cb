"""Turns our errors (and servey's AuthorizationError) raised by any route into JSON answers."""

from typing import Optional

from servey.security.authorization import AuthorizationError
from servey.servey_starlette.middleware.middleware_factory_abc import MiddlewareFactoryABC
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from persisty_data.errors import ForbiddenError, PersistyDataError
from persisty_data.web.error_responses import error_response, response_for


class DataErrorMiddleware:
    """servey answers 500 to any exception an action raises; client mistakes are not 500s."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except (PersistyDataError, AuthorizationError) as exc:
            if started:
                raise
            anonymous = not any(name == b"authorization" for name, _ in scope.get("headers") or ())
            if isinstance(exc, AuthorizationError) or (anonymous and isinstance(exc, ForbiddenError)):
                # A caller without credentials is asked for them, not told "never".
                response = error_response(401, "unauthorized", str(exc) or "unauthorized")
            else:
                response = response_for(exc)
            await response(scope, receive, send)


class DataErrorMiddlewareFactory(MiddlewareFactoryABC):
    priority = 50

    def create(self) -> Optional[Middleware]:
        return Middleware(DataErrorMiddleware)
