"""
The app's own actions (found by servey in ``<SERVEY_MAIN>.actions``):

- ``POST /actions/sign-in`` ``{"username", "password"}`` -> a servey JWT;
- ``POST /actions/post-message`` ``{"text", "attachment_key"}`` (Bearer) -> the message;
- ``GET /actions/latest-messages?limit=`` (Bearer) -> the newest messages first;
- ``GET /actions/attachment-limits`` -> the attachments store's size limit and types.

Attachments are uploaded before posting, with a form from
``/actions/attachments-upload-form`` (persisty-data), under the author's own prefix.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import List, Optional

from persisty.search_order.search_order import SearchOrder
from persisty.search_order.search_order_attr import SearchOrderAttr
from persisty.store_meta import get_meta
from servey.action.action import action
from servey.security.authorization import Authorization, AuthorizationError
from servey.trigger.web_trigger import WEB_GET, WEB_POST
from starlette.exceptions import HTTPException

from messager import users
from messager.data_store import attachments
from messager.settings import MAX_TEXT_LENGTH
from messager.store.message import Message
from persisty_data.errors import ForbiddenError
from persisty_data.keys import validate_key


@dataclass
class SignIn:
    token: str  # send as "Authorization: Bearer <token>"
    subject_id: str
    expire_at: datetime


@dataclass
class AttachmentLimits:
    max_size: Optional[int]  # bytes; None: no limit
    permitted_content_types: List[str]  # patterns such as "image/*"; empty: any type


@action(triggers=(WEB_GET,))
def attachment_limits() -> AttachmentLimits:
    """What the attachments store accepts, for the page to check a file before uploading it."""
    meta = attachments.get_store().get_meta()
    return AttachmentLimits(meta.max_item_size, list(meta.permitted_content_types or ()))


@action(triggers=(WEB_POST,))
def sign_in(username: str, password: str) -> SignIn:
    """Sign in as a demo user (alice, bob or carol): a JWT for the Bearer header."""
    signed_in = users.sign_in(username, password)
    if signed_in is None:
        raise AuthorizationError("wrong_username_or_password")
    token, authorization = signed_in
    return SignIn(token=token, subject_id=authorization.subject_id, expire_at=authorization.expire_at)


def _subject(authorization: Optional[Authorization]) -> str:
    if authorization is None or not authorization.subject_id:
        raise AuthorizationError("sign_in_required")
    return authorization.subject_id


@action(triggers=(WEB_POST,))
def post_message(
    text: str = "",
    attachment_key: Optional[str] = None,
    authorization: Optional[Authorization] = None,
) -> Message:
    """
    Post a message as the signed-in user. The author comes from the token, never from the
    request. An attachment must already be uploaded, under the author's own prefix
    ("{user}/..."): nobody can attach (and so vouch for) someone else's item.
    """
    author = _subject(authorization)
    text = text.strip()
    if len(text) > MAX_TEXT_LENGTH:
        raise HTTPException(400, f"text_too_long: at most {MAX_TEXT_LENGTH} characters")
    content_type, size = None, None
    if attachment_key:
        validate_key(attachment_key)
        if not attachment_key.startswith(f"{author}/"):
            raise ForbiddenError("attachment_not_yours", key=attachment_key)
        store = attachments.create(authorization)
        item = store.read(attachment_key) if store is not None else None
        if item is None:
            raise HTTPException(404, f"attachment_not_found: {attachment_key}")
        content_type, size = item.content_type, item.size
    elif not text:
        raise HTTPException(400, "empty_message: write something or attach a file")
    store = get_meta(Message).create_store()  # internal: the author is set here
    return store.create(
        Message(
            author=author,
            text=text,
            attachment_key=attachment_key or None,
            attachment_content_type=content_type,
            attachment_size=size,
        )
    )


@action(triggers=(WEB_GET,))
def latest_messages(limit: int = 50, authorization: Optional[Authorization] = None) -> List[Message]:
    """The newest messages first (at most limit, 1..100), for signed-in users."""
    store = get_meta(Message).create_secured_store(authorization)
    limit = max(1, min(limit, 100))
    order = SearchOrder((SearchOrderAttr("created_at", desc=True),))
    return store.search(search_order=order, limit=limit).results
