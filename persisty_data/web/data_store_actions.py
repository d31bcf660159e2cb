"""servey actions for data store factories: metadata actions plus upload form and download URL."""

import dataclasses
from typing import Iterator, List, NoReturn, Optional

from persisty.security.store_access import NO_ACCESS
from persisty.security.store_security_abc import StoreSecurityABC
from servey.action.action import Action
from servey.finder.action_finder_abc import ActionFinderABC
from servey.security.authorization import Authorization, AuthorizationError
from servey.trigger.web_trigger import WebTrigger, WebTriggerMethod

from persisty_data.errors import ForbiddenError, InvalidSearchError
from persisty_data.factory.data_store_factory_abc import DataStoreFactoryABC
from persisty_data.factory.data_store_factory_finder_abc import find_data_store_factories
from persisty_data.factory.restrict_access_data_store import RestrictAccessDataStore
from persisty_data.upload_form import UploadForm


@dataclasses.dataclass(frozen=True)
class FactoryStoreSecurity(StoreSecurityABC):
    """Lets persisty's generated actions secure a data store through its factory's policy."""

    factory: DataStoreFactoryABC

    def get_secured(self, store, authorization: Optional[Authorization]):
        secured = self.factory.create(authorization)
        if secured is not None:
            return secured
        if authorization is None:
            raise AuthorizationError("authorization_required")
        return RestrictAccessDataStore(store, NO_ACCESS)

    def get_api_meta(self, store_meta):
        return store_meta


def _with_path_keys(action: Action) -> Action:
    """Keys contain '/': persisty's ``/{key}`` routes must match the rest of the path."""
    triggers = tuple(
        dataclasses.replace(t, path=t.path.replace("{key}", "{key:path}"))
        if isinstance(t, WebTrigger) and t.path and "{key}" in t.path
        else t
        for t in action.triggers
    )
    return dataclasses.replace(action, triggers=triggers)


def _refuse(authorization: Optional[Authorization], what: str, key: str) -> NoReturn:
    if authorization is None:
        raise AuthorizationError("authorization_required")
    raise ForbiddenError(what, key=key)


def create_data_store_actions(factory: DataStoreFactoryABC) -> List[Action]:
    """persisty's read / read_batch / search / count / delete / edit_batch actions (deletes
    only) for the store's metadata, and ``<name>_upload_form`` / ``<name>_download_url``."""
    # persisty ships no types: mypy knows only DataStoreMeta's own fields, not StoreMeta's.
    meta = dataclasses.replace(  # type: ignore[call-arg]
        factory.get_store().get_meta(), store_security=FactoryStoreSecurity(factory)
    )
    actions = [_with_path_keys(a) for a in meta.action_factory.create_actions(meta)]
    path = "/actions/" + factory.name.replace("_", "-")

    def upload_form(
        key: str,
        content_type: Optional[str] = None,
        success_action_status: Optional[int] = None,
        success_action_redirect: Optional[str] = None,
        authorization: Optional[Authorization] = None,
    ) -> UploadForm:
        if success_action_status not in (None, 200, 201, 204):
            raise InvalidSearchError("success_action_status_must_be_200_201_or_204")
        form = factory.get_upload_form(
            key,
            authorization,
            content_type,
            success_action_status=success_action_status,
            success_action_redirect=success_action_redirect,
        )
        if form is None:
            _refuse(authorization, "upload_forbidden", key)
        return form

    def download_url(key: str, authorization: Optional[Authorization] = None) -> Optional[str]:
        store = factory.create(authorization)
        if store is None:
            _refuse(authorization, "download_forbidden", key)
        return factory.get_download_url(key, authorization)

    actions.append(
        Action(
            fn=upload_form,
            name=f"{factory.name}_upload_form",
            description=f"Get a signed form to upload one item to {factory.name}",
            triggers=(WebTrigger(WebTriggerMethod.GET, f"{path}-upload-form"),),
        )
    )
    actions.append(
        Action(
            fn=download_url,
            name=f"{factory.name}_download_url",
            description=f"Get a signed URL to download one item from {factory.name} (null if missing)",
            triggers=(WebTrigger(WebTriggerMethod.GET, f"{path}-download-url"),),
        )
    )
    return actions


class DataStoreActionFinder(ActionFinderABC):
    def find_actions(self) -> Iterator[Action]:
        for factory in find_data_store_factories():
            yield from create_data_store_actions(factory)
