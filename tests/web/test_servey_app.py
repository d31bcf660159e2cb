"""
A whole servey app in its own uvicorn process (tests/apps/web_app, on a directory store, on
a chunk store over SQLite, and on S3 (moto's server over HTTP)): every kind of caller
against every operation, over REST, the upload / download URLs and GraphQL, with tokens
minted here.

Stores (see tests/apps/web_app): private_files (owners only, "root" scope sees all) and
shared_files (owners write, everyone reads, anonymous callers too).

On s3 the forms are S3 presigned POSTs (url: the moto server, answer 204 as on S3) and the
download URLs S3 presigned GETs; the app serves no bytes and has no /data routes, so a
signed-in caller downloads by asking for a download URL with its token. The matrix
(who sees, uploads, deletes what) is the same on every backend.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Dict, Optional

import httpx
import pytest
from servey.security.authorization import Authorization
from servey.security.authorizer.jwt_authorizer import JwtAuthorizer

from persisty_data.post_policy import decode_policy, validate_post_policy
from tests.s3_backends import CREDENTIALS, REGION, empty_and_delete_bucket, moto_server_endpoint, server_client
from tests.web.support import ADMIN, ALICE, BOB, EXPIRED_ALICE, ServeyServer, bearer, has_failed

APP_SECRET = "servey-app-test-secret-0123456789abcdef"
CALLERS: Dict[str, Optional[Authorization]] = {"anonymous": None, "alice": ALICE, "bob": BOB, "root": ADMIN}
STORES = ("private_files", "shared_files")
ALICE_DOC = "alice/seed/doc.txt"
BOB_DOC = "bob/seed/doc.txt"
CONTENT = {ALICE_DOC: b"alice's document\n", BOB_DOC: b"bob's document\n"}


@dataclass
class App:
    backend: str
    server: ServeyServer
    client: httpx.Client
    s3_endpoint: Optional[str] = None  # s3: the moto server the app and the forms use
    buckets: Optional[Dict[str, str]] = None  # s3: store name -> bucket

    @property
    def s3(self) -> bool:
        return self.backend == "s3"


# What a form upload answers (without success_action_status): our 201 with the item as
# JSON, or S3's 204 with no body.
UPLOAD_STATUS = {"directory": 201, "chunk": 201, "s3": 204}


@pytest.fixture(scope="module", params=["directory", "chunk", "s3"])
def app(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"web-app-{request.param}")
    env = {
        "WEB_APP_ROOT": str(root / "data"),
        "WEB_APP_SECRET": APP_SECRET,
        "WEB_APP_BACKEND": request.param,
        "WEB_APP_BASE_URL": "{url}",
    }
    s3_endpoint, buckets, s3 = None, None, None
    if request.param == "s3":
        # moto's server runs in this process (tests/s3_backends.py) on 127.0.0.1: the app
        # (its own process) and the test's plain HTTP clients all reach it over HTTP.
        s3_endpoint, s3 = moto_server_endpoint(), server_client()
        prefix = f"web-app-{uuid.uuid4().hex[:12]}"
        buckets = {store: f"{prefix}-{store.replace('_', '-')}" for store in STORES}
        for bucket in buckets.values():
            s3.create_bucket(Bucket=bucket)
        env.update(
            {
                "WEB_APP_S3_ENDPOINT_URL": s3_endpoint,
                "WEB_APP_S3_REGION": REGION,  # not AWS_REGION: persisty would switch to DynamoDB
                "WEB_APP_S3_BUCKET_PREFIX": prefix,
                "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
                "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
            }
        )
    server = ServeyServer("tests.apps.web_app", env, str(root / "server.log"))
    try:
        server.wait_until_up()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            app = App(request.param, server, client, s3_endpoint, buckets)
            for store in STORES:
                for key, who in ((ALICE_DOC, ALICE), (BOB_DOC, BOB)):
                    upload(app, store, key, CONTENT[key], who)
            yield app
    finally:
        server.stop()
        for bucket in (buckets or {}).values():
            empty_and_delete_bucket(s3, bucket)


@pytest.fixture(autouse=True)
def server_log_on_failure(request):
    yield
    app = request.node.funcargs.get("app") or request.node.funcargs.get("hosted_app")
    if app is not None and has_failed(request.node):
        print(f"--- servey app log {app.server.log_path} ---\n{app.server.log()}")


def actions(store: str) -> str:
    return "/actions/" + store.replace("_", "-")


def fields_of(form: dict) -> dict:
    return {f["name"]: f["value"] for f in form["fields"]}


def form_url(app: App, store: str) -> str:
    """Where the store's forms post: the app's upload route, or the store's bucket on S3."""
    return f"{app.s3_endpoint}/{app.buckets[store]}" if app.s3 else f"{app.server.url}/data/{store}"


def upload(app: App, store: str, key: str, content: bytes, who: Authorization) -> None:
    response = app.client.get(f"{actions(store)}-upload-form", params={"key": key}, headers=bearer(who))
    assert response.status_code == 200, response.text
    form = response.json()
    assert form["url"] == form_url(app, store)
    # posted by a plain client: the form itself is the authorization
    posted = httpx.post(form["url"], data=fields_of(form), files={form["file_param"]: ("f", content)}, timeout=30)
    assert posted.status_code == UPLOAD_STATUS[app.backend], posted.text


def content_of(app: App, store: str, key: str, who: Authorization) -> bytes:
    """The item's content as who downloads it: hosted, by Bearer token on the app's /data
    route; S3, with a download URL asked for with the token."""
    if not app.s3:
        response = app.client.get(f"/data/{store}/{key}", headers=bearer(who))
        assert response.status_code == 200, response.text
        return response.content
    url = app.client.get(f"{actions(store)}-download-url", params={"key": key}, headers=bearer(who)).json()
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, response.text
    return response.content


def assert_refused(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == {401: "unauthorized", 403: "forbidden"}[status], body


def new_key(owner="alice") -> str:
    return f"{owner}/{uuid.uuid4().hex[:12]}.txt"


# region: the caller x operation matrix

# What each caller gets for alice's document. "item": visible; None: hidden (persisty's
# read / download_url answer null, our download route 404); 401: must sign in first.
SEES_ALICE_DOC = {
    "private_files": {"anonymous": 401, "alice": "item", "bob": None, "root": "item"},
    "shared_files": {"anonymous": "item", "alice": "item", "bob": "item", "root": "item"},
}
SEARCH_SEES = {
    "private_files": {"anonymous": 401, "alice": {ALICE_DOC}, "bob": {BOB_DOC}, "root": {ALICE_DOC, BOB_DOC}},
    "shared_files": {c: {ALICE_DOC, BOB_DOC} for c in CALLERS},
}
matrix = pytest.mark.parametrize("store, caller", [(s, c) for s in STORES for c in CALLERS])


@matrix
def test_read(app, store, caller):
    response = app.client.get(f"{actions(store)}/{ALICE_DOC}", headers=bearer(CALLERS[caller]))
    expected = SEES_ALICE_DOC[store][caller]
    if expected == 401:
        return assert_refused(response, 401)
    assert response.status_code == 200, response.text
    if expected is None:
        assert response.json() is None
        return
    body = response.json()
    assert body["key"] == ALICE_DOC
    assert body["item"]["size"] == len(CONTENT[ALICE_DOC])
    assert body["item"]["content_type"] == "text/plain"
    assert body["deletable"] is (caller in ("alice", "root"))
    assert body["updatable"] is False  # content changes through uploads only


@matrix
def test_search_and_count(app, store, caller):
    headers = bearer(CALLERS[caller])
    params = {"search_filter.key__endswith": "/seed/doc.txt"}
    search = app.client.get(f"{actions(store)}-search", params=params, headers=headers)
    count = app.client.get(f"{actions(store)}-count", params=params, headers=headers)
    everything = app.client.get(f"{actions(store)}-search", headers=headers)
    expected = SEARCH_SEES[store][caller]
    if expected == 401:
        for response in (search, count, everything):
            assert_refused(response, 401)
        return
    assert search.status_code == 200, search.text
    assert {r["key"] for r in search.json()["results"]} == expected
    assert search.json()["creatable"] is False  # items are created by uploads, not by persisty's create
    assert count.status_code == 200 and count.json() == len(expected)
    if store == "private_files" and caller in ("alice", "bob"):
        # nothing of anybody else's, whatever other tests uploaded
        assert all(r["key"].startswith(f"{caller}/") for r in everything.json()["results"])


@matrix
def test_read_batch(app, store, caller):
    response = app.client.get(
        f"{actions(store)}-batch", params={"keys": [ALICE_DOC, BOB_DOC]}, headers=bearer(CALLERS[caller])
    )
    expected = SEARCH_SEES[store][caller]
    if expected == 401:
        return assert_refused(response, 401)
    assert response.status_code == 200, response.text
    results = response.json()
    assert [r["key"] if r else None for r in results] == [k if k in expected else None for k in (ALICE_DOC, BOB_DOC)]


MAY_UPLOAD_ALICE_KEY = {"anonymous": 401, "alice": 201, "bob": 403, "root": 201}


@matrix
def test_upload_form_and_upload(app, store, caller):
    key = new_key()
    who = CALLERS[caller]
    response = app.client.get(f"{actions(store)}-upload-form", params={"key": key}, headers=bearer(who))
    expected = MAY_UPLOAD_ALICE_KEY[caller]
    if expected in (401, 403):
        return assert_refused(response, expected)
    assert response.status_code == 200, response.text
    form = response.json()
    assert form["method"] == "POST" and form["file_param"] == "file"
    assert datetime.fromisoformat(form["expire_at"]) > datetime.now(timezone.utc)
    assert fields_of(form)["key"] == key
    assert form["url"] == form_url(app, store)
    posted = httpx.post(form["url"], data=fields_of(form), files={"file": ("f.txt", b"uploaded")})
    assert posted.status_code == UPLOAD_STATUS[app.backend], posted.text
    if not app.s3:  # S3 answers 204, no body
        assert posted.json()["key"] == key and posted.json()["size"] == 8
    read = app.client.get(f"{actions(store)}/{key}", headers=bearer(ALICE))
    assert read.json()["item"]["size"] == 8


@matrix
def test_upload_form_for_own_key(app, store, caller):
    """Everybody signed in may upload under their own prefix; anonymous callers never."""
    who = CALLERS[caller]
    key = new_key(who.subject_id if who else "anonymous")
    response = app.client.get(f"{actions(store)}-upload-form", params={"key": key}, headers=bearer(who))
    if who is None:
        return assert_refused(response, 401)
    assert response.status_code == 200, response.text


@matrix
def test_download_url_and_signed_download(app, store, caller):
    response = app.client.get(
        f"{actions(store)}-download-url", params={"key": ALICE_DOC}, headers=bearer(CALLERS[caller])
    )
    expected = SEES_ALICE_DOC[store][caller]
    if expected == 401:
        return assert_refused(response, 401)
    assert response.status_code == 200, response.text
    url = response.json()
    if expected is None:
        assert url is None
        return
    if app.s3:
        assert url.startswith(f"{app.s3_endpoint}/{app.buckets[store]}/{ALICE_DOC}?")
        assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
    else:
        assert url.startswith(f"{app.server.url}/data/{store}/{ALICE_DOC}?expires=")
    download = httpx.get(url)  # no token: the URL is the authorization
    assert download.status_code == 200
    assert download.content == CONTENT[ALICE_DOC]
    if not app.s3:  # S3 cannot add nosniff to a GetObject answer
        assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-type"] == "text/plain"


@matrix
def test_download_with_bearer(app, store, caller):
    path = f"/data/{store}/{ALICE_DOC}"
    response = app.client.get(path, headers=bearer(CALLERS[caller]))
    head = app.client.head(path, headers=bearer(CALLERS[caller]))
    if app.s3:
        # No app route serves S3 stores, whoever asks: the bytes never pass through the app.
        # With a token, callers download through a download URL (the test above).
        assert response.status_code == 404 and head.status_code == 404
        return
    expected = SEES_ALICE_DOC[store][caller]
    if expected == 401:
        assert head.status_code == 401
        return assert_refused(response, 401)
    if expected is None:
        assert head.status_code == 404
        assert response.status_code == 404 and response.json()["error_code"] == "not_found"
        return
    assert response.status_code == 200 and head.status_code == 200
    assert response.content == CONTENT[ALICE_DOC] and head.content == b""
    assert head.headers["etag"] == response.headers["etag"]


# anonymous deletes need a user (401) wherever they are refused, like uploads
DELETES_ALICE_ITEM = {
    "private_files": {"anonymous": 401, "alice": True, "bob": False, "root": True},
    "shared_files": {"anonymous": 401, "alice": True, "bob": 403, "root": True},
}


@matrix
def test_delete(app, store, caller):
    key = new_key()
    upload(app, store, key, b"victim", ALICE)
    response = app.client.delete(f"{actions(store)}/{key}", headers=bearer(CALLERS[caller]))
    expected = DELETES_ALICE_ITEM[store][caller]
    still_there = app.client.get(f"{actions(store)}/{key}", headers=bearer(ADMIN)).json() is not None
    if expected in (401, 403):
        assert_refused(response, expected)
        assert still_there
        return
    assert response.status_code == 200, response.text
    assert response.json() is expected
    assert still_there is (not expected)


@matrix
def test_edit_batch_deletes(app, store, caller):
    key = new_key()
    upload(app, store, key, b"victim", ALICE)
    response = app.client.patch(
        f"{actions(store)}-batch", json={"edits": [{"delete_key": key}]}, headers=bearer(CALLERS[caller])
    )
    still_there = app.client.get(f"{actions(store)}/{key}", headers=bearer(ADMIN)).json() is not None
    if store == "private_files" and caller == "anonymous":
        assert_refused(response, 401)  # anonymous callers may do nothing at all here
        assert still_there
        return
    # a batch answers per edit: a refused delete is an unsuccessful edit, not an HTTP error
    assert response.status_code == 200, response.text
    (result,) = response.json()
    refused = caller in ("anonymous", "bob")
    assert result["success"] is not refused
    assert still_there is refused
    if refused and store == "shared_files":
        assert result["code"] == "forbidden"  # visible, but not theirs


def test_owner_cannot_replace_an_item_through_a_form_for_another_key(app):
    """bob's form for his own key cannot be turned into an upload over alice's document."""
    form = app.client.get(
        f"{actions('shared_files')}-upload-form", params={"key": new_key("bob")}, headers=bearer(BOB)
    ).json()
    fields = {**fields_of(form), "key": ALICE_DOC}
    if app.s3:
        # moto does not enforce POST policies (it would store the upload): what S3 decides
        # is read off the policy S3 gets, with the bucket that comes from the form's URL.
        policy, bucket = decode_policy(fields["policy"]), {"bucket": app.buckets["shared_files"]}
        assert validate_post_policy(policy, fields_of(form), 11, implicit_fields=bucket) == []
        assert [str(v) for v in validate_post_policy(policy, fields, 11, implicit_fields=bucket)] == [
            "field_mismatch:key"
        ]
    else:
        posted = httpx.post(form["url"], data=fields, files={"file": ("f", b"overwritten")})
        assert posted.status_code == 403 and posted.json()["error_code"] == "upload_rejected"
    assert content_of(app, "shared_files", ALICE_DOC, None) == CONTENT[ALICE_DOC]


def test_upload_form_errors(app):
    url = f"{actions('private_files')}-upload-form"
    alice = bearer(ALICE)
    bad_key = app.client.get(url, params={"key": "alice/../bob/x"}, headers=alice)
    assert bad_key.status_code == 400 and bad_key.json()["error_code"] == "invalid_key"
    bad_type = app.client.get(url, params={"key": new_key(), "content_type": "no-slash"}, headers=alice)
    assert bad_type.status_code == 415 and bad_type.json()["error_code"] == "malformed_content_type"
    listed = app.client.get(url, params={"key": new_key(), "content_type": "image/png,text/html"}, headers=alice)
    assert listed.status_code == 415 and listed.json()["error_code"] == "malformed_content_type"
    assert app.client.get(url, headers=alice).status_code == 422  # key is required
    typed = app.client.get(url, params={"key": new_key(), "content_type": "image/png"}, headers=alice)
    assert fields_of(typed.json())["Content-Type"] == "image/png"


@pytest.mark.parametrize("status", [200, 201, 204])
def test_upload_with_success_action_status(app, status):
    """The status is bound into the form and answered by S3 and by the hosted route alike."""
    key = new_key()
    params = {"key": key, "success_action_status": status}
    form = app.client.get(f"{actions('private_files')}-upload-form", params=params, headers=bearer(ALICE)).json()
    assert fields_of(form)["success_action_status"] == str(status)
    assert {"success_action_status": str(status)} in decode_policy(fields_of(form)["policy"])["conditions"]
    posted = httpx.post(form["url"], data=fields_of(form), files={"file": ("f", b"with status")})
    assert posted.status_code == status, posted.text
    assert content_of(app, "private_files", key, ALICE) == b"with status"


# endregion

# region: bad tokens: 401, never 500

BAD_TOKENS = {
    "garbage": "Bearer not-a-jwt",
    "expired": bearer(EXPIRED_ALICE)["Authorization"],
    "other_secret": "Bearer " + JwtAuthorizer("another-secret-of-a-decent-length-0123456789").encode(ALICE),
    "tampered": bearer(ALICE)["Authorization"][:-2] + "xx",
}


@pytest.mark.parametrize("token", list(BAD_TOKENS))
@pytest.mark.parametrize("store", STORES)
def test_bad_tokens_give_401(app, store, token):
    headers = {"Authorization": BAD_TOKENS[token]}
    base = actions(store)
    requests = [
        ("GET", f"{base}/{ALICE_DOC}", None),
        ("GET", f"{base}-search", None),
        ("GET", f"{base}-count", None),
        ("GET", f"{base}-batch", {"keys": [ALICE_DOC, BOB_DOC]}),
        ("GET", f"{base}-upload-form", {"key": new_key()}),
        ("GET", f"{base}-download-url", {"key": ALICE_DOC}),
        ("DELETE", f"{base}/{ALICE_DOC}", None),
        ("GET", f"/data/{store}/{ALICE_DOC}", None),
        ("HEAD", f"/data/{store}/{ALICE_DOC}", None),
    ]
    for method, path, params in requests:
        response = app.client.request(method, path, params=params, headers=headers)
        # s3: no /data routes at all (see test_download_with_bearer)
        expected = 404 if app.s3 and path.startswith("/data/") else 401
        assert response.status_code == expected, (method, path, response.status_code, response.text)
    query = "{ " + _camel(store) + "Search { results { key } } }"
    response = app.client.post("/graphql", json={"query": query}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["data"] is None and response.json()["errors"]
    # the documents are untouched
    assert content_of(app, store, ALICE_DOC, ALICE) == CONTENT[ALICE_DOC]


# endregion

# region: GraphQL


def _camel(store: str) -> str:
    head, *rest = store.split("_")
    return head + "".join(r.title() for r in rest)


def graphql(app: App, query: str, who: Optional[Authorization]) -> dict:
    response = app.client.post("/graphql", json={"query": query}, headers=bearer(who))
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("store", STORES)
def test_graphql_upload_form(app, store):
    key = new_key()
    fields = "{ url method fileParam expireAt fields { name value } }"
    query = f'{{ {_camel(store)}UploadForm(key: "{key}") {fields} }}'
    result = graphql(app, query, ALICE)
    assert "errors" not in result, result
    form = result["data"][f"{_camel(store)}UploadForm"]
    assert form["method"] == "POST" and form["fileParam"] == "file"
    assert form["url"] == form_url(app, store)
    posted = httpx.post(form["url"], data=fields_of(form), files={"file": ("f", b"via graphql")})
    assert posted.status_code == UPLOAD_STATUS[app.backend], posted.text
    assert content_of(app, store, key, ALICE) == b"via graphql"

    refused = graphql(app, query, None)
    assert refused["data"] is None
    assert [e["message"] for e in refused["errors"]] == ["authorization_required"]
    forbidden = graphql(app, query, BOB)
    assert forbidden["data"] is None
    assert "upload_forbidden" in forbidden["errors"][0]["message"]


@pytest.mark.parametrize("store", STORES)
def test_graphql_search(app, store):
    search_filter = '{key_Endswith: "/seed/doc.txt"}'
    query = f"{{ {_camel(store)}Search(searchFilter: {search_filter}) {{ results {{ key item {{ contentType }} }} }} }}"
    for caller, who in CALLERS.items():
        result = graphql(app, query, who)
        expected = SEARCH_SEES[store][caller]
        if expected == 401:
            assert result["data"] is None
            assert [e["message"] for e in result["errors"]] == ["authorization_required"]
            continue
        assert "errors" not in result, result
        results = result["data"][f"{_camel(store)}Search"]["results"]
        assert {r["key"] for r in results} == expected
        assert all(r["item"]["contentType"] == "text/plain" for r in results)


def test_graphql_download_url_and_count(app):
    query = f'{{ privateFilesDownloadUrl(key: "{ALICE_DOC}") privateFilesCount }}'
    result = graphql(app, query, ALICE)
    assert "errors" not in result, result
    assert httpx.get(result["data"]["privateFilesDownloadUrl"]).content == CONTENT[ALICE_DOC]
    assert result["data"]["privateFilesCount"] >= 1
    hidden = graphql(app, query, BOB)
    assert hidden["data"]["privateFilesDownloadUrl"] is None


# endregion


def test_openapi_lists_the_data_store_actions(app):
    response = app.client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for store in STORES:
        base = actions(store)
        assert set(paths[f"{base}/{{key:path}}"]) == {"get", "delete"}
        for suffix in ("-search", "-count", "-upload-form", "-download-url"):
            assert "get" in paths[base + suffix], suffix
        assert set(paths[f"{base}-batch"]) == {"get", "patch"}
        form_op = paths[f"{base}-upload-form"]["get"]
        assert form_op["operationId"] == f"{store}_upload_form"
        assert {p["name"] for p in form_op.get("parameters", [])} >= {"key", "content_type"}
    # the hosted routes are plain routes, not actions
    assert not any(p.startswith("/data/") for p in paths)


# region: the repository's own hosted_app


@pytest.fixture(scope="module")
def hosted_app(tmp_path_factory):
    root = tmp_path_factory.mktemp("hosted-app")
    env = {"HOSTED_APP_ROOT": str(root / "data"), "HOSTED_APP_SECRET": APP_SECRET, "HOSTED_APP_BASE_URL": "{url}"}
    server = ServeyServer("tests.apps.hosted_app", env, str(root / "server.log"))
    try:
        server.wait_until_up()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            yield App("directory", server, client)
    finally:
        server.stop()


def test_hosted_app(hosted_app):
    """tests/apps/hosted_app: attachments readable by every signed-in user, written by owners."""
    app = hosted_app
    upload(app, "attachments", ALICE_DOC, CONTENT[ALICE_DOC], ALICE)
    assert app.client.get(f"/actions/attachments/{ALICE_DOC}", headers=bearer(BOB)).json()["key"] == ALICE_DOC
    url = app.client.get("/actions/attachments-download-url", params={"key": ALICE_DOC}, headers=bearer(BOB)).json()
    assert httpx.get(url).content == CONTENT[ALICE_DOC]
    assert_refused(app.client.get(f"/actions/attachments/{ALICE_DOC}"), 401)
    assert_refused(
        app.client.get("/actions/attachments-upload-form", params={"key": ALICE_DOC}, headers=bearer(BOB)), 403
    )
    assert_refused(app.client.delete(f"/actions/attachments/{ALICE_DOC}", headers=bearer(BOB)), 403)
    assert app.client.get(f"/data/attachments/{ALICE_DOC}").status_code == 401
    assert app.client.get("/openapi.json").status_code == 200


# endregion
