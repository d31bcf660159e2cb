"""
marshy configuration for the messager example. marshy imports every top-level
``marshy_config_*`` module on sys.path, so this one is active whenever ``examples/`` is
on PYTHONPATH (as it is for the messager). It registers:

- the demo users' password authenticator (servey's ``POST /login`` then signs in alice,
  bob and carol instead of a debug "root" user);
- the page's routes (``/`` and ``/static``), when starlette is installed.
"""

from marshy.factory.impl_marshaller_factory import register_impl
from marshy.marshaller_context import MarshallerContext

priority = 90


def configure(context: MarshallerContext) -> None:
    from messager.users import DemoUserAuthenticator
    from servey.security.authenticator.password_authenticator_abc import PasswordAuthenticatorABC

    register_impl(PasswordAuthenticatorABC, DemoUserAuthenticator, context)
    try:
        from messager.web import MessagerPageRouteFactory
        from servey.servey_starlette.route_factory.route_factory_abc import RouteFactoryABC
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "starlette":
            return  # no web server installed: nothing to serve
        raise
    register_impl(RouteFactoryABC, MessagerPageRouteFactory, context)
