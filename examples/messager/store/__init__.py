"""The app's persisty stores (found by persisty in ``<SERVEY_MAIN>.store``)."""

from messager.store.message import Message

__all__ = ["Message"]
