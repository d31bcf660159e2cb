"""The one media-type parser (RFC 9110), and the decisions made on what it parses."""

import os

import pytest

from persisty_data.content_types import (
    MediaType,
    is_inline,
    is_permitted,
    normalize_content_type,
    parse_media_range,
    parse_media_type,
    resolve_content_type,
)
from persisty_data.directory.directory_data_item import DirectoryDataItem
from persisty_data.directory.directory_data_store import DirectoryDataStore
from persisty_data.download_headers import download_headers
from persisty_data.errors import ContentTypeNotPermittedError, MalformedContentTypeError

VALID = [
    ("image/png", "image/png"),
    ("IMAGE/PNG", "image/png"),
    ("  text/plain  ", "text/plain"),
    ("text/plain;charset=utf-8", "text/plain; charset=utf-8"),
    ("text/plain ;\tCharset=UTF-8", "text/plain; charset=UTF-8"),
    ('text/plain; charset="utf-8"', "text/plain; charset=utf-8"),
    ('application/x-thing; a="b,c; d"', 'application/x-thing; a="b,c; d"'),
    ('application/x-thing; a="q\\"uote\\\\"', 'application/x-thing; a="q\\"uote\\\\"'),
    ('application/x-thing; a=""', 'application/x-thing; a=""'),
    ("application/vnd.api+json; v=1; ext=x", "application/vnd.api+json; v=1; ext=x"),
    ("text/html;charset=utf-8", "text/html; charset=utf-8"),  # valid: it is the decision that refuses it inline
    ("application/x-!#$%&'*+-.^_`|~", "application/x-!#$%&'*+-.^_`|~"),
]

MALFORMED = [
    "image/png,text/html",  # a list: the second type would pass a prefix check
    "image/png, text/html",
    "image/png;a=b,text/html",
    "image/png text/html",
    "image/png/html",
    "image/png; text/html",
    "",
    " ",
    "image",
    "image/",
    "/png",
    "image /png",
    "image/ png",
    "ima ge/png",
    "image/pn\x00g",
    "image/png\r\nX-Injected: 1",
    "image/png\n",
    "image/png\r",
    "image/png;",  # an empty parameter
    "image/png;;a=b",
    "image/png; a",
    "image/png; a=",
    "image/png; a =b",
    "image/png; a= b",
    'image/png; a="unterminated',
    'image/png; a="x"y',
    'image/png; "a"=b',
    "image/png; a=b c",
    "image/png; a=b; A=c",  # the same parameter twice
    "image/png; a=é",
    'image/png; a="é"',
    "imagé/png",
    "image/png\x7f",
    "*/*",
    "image/*",
    "*/png",
    "text/(html)",
    "text/html@x",
    'text/"html"',
    "a" * 120 + "/" + "b" * 136,  # longer than 255
    "a/b" + "".join(f";p{i:02}=1" for i in range(42)),  # 255 characters; more in canonical form
]


@pytest.mark.parametrize("value, canonical", VALID)
def test_valid_media_types_have_one_canonical_form(value, canonical):
    assert normalize_content_type(value) == canonical
    assert normalize_content_type(canonical) == canonical


def test_parsed_parts():
    parsed = parse_media_type('Text/Plain; Charset="utf-8"; format=flowed')
    assert parsed == MediaType("text", "plain", (("charset", "utf-8"), ("format", "flowed")))
    assert parsed.essence == "text/plain"
    assert parsed.parameter("charset") == "utf-8" and parsed.parameter("missing") is None


@pytest.mark.parametrize("value", MALFORMED)
def test_malformed_media_types_are_refused(value):
    with pytest.raises(MalformedContentTypeError):
        parse_media_type(value)


@pytest.mark.parametrize("value", [None, 5, b"image/png", ["image/png"]])
def test_only_strings_are_media_types(value):
    with pytest.raises(MalformedContentTypeError):
        parse_media_type(value)  # type: ignore[arg-type]


def test_malformed_is_a_content_type_refusal_with_its_own_code():
    assert issubclass(MalformedContentTypeError, ContentTypeNotPermittedError)
    with pytest.raises(MalformedContentTypeError) as info:
        resolve_content_type("a.png", "image/png,text/html", ("image/*",))
    assert info.value.code == "malformed_content_type" and info.value.key == "a.png"
    assert "\r" not in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("value", ["image/png,text/html", "image/png text/html", "image/png;x=y,text/html"])
def test_an_image_only_allowlist_refuses_lists_that_start_with_an_image(value):
    with pytest.raises(MalformedContentTypeError):
        resolve_content_type("a.png", value, ("image/*",))
    with pytest.raises(MalformedContentTypeError):
        is_permitted(value, ("image/*",))


def test_allowlists_match_on_the_parsed_type():
    assert resolve_content_type("a", "IMAGE/PNG; x=1", ("image/*",)) == "image/png; x=1"
    assert resolve_content_type("a.png", None, ("image/png",)) == "image/png"
    assert resolve_content_type("a", "text/plain", ("*/*",)) == "text/plain"
    assert resolve_content_type("a", "text/plain", None) == "text/plain"
    for refused in ("text/html", "image2/png", "imagex/png", "application/image"):
        with pytest.raises(ContentTypeNotPermittedError) as info:
            resolve_content_type("a", refused, ("image/*", "application/pdf"))
        assert type(info.value) is ContentTypeNotPermittedError


@pytest.mark.parametrize(
    "value, parsed",
    [("*/*", "*/*"), ("image/*", "image/*"), (" Image/PNG ", "image/png"), ("application/vnd.x+json", None)],
)
def test_media_ranges(value, parsed):
    assert parse_media_range(value) == (parsed or value)


@pytest.mark.parametrize(
    "value",
    ["*/png", "im*/png", "image/p*", "image/png; q=1", "image/png,text/html", "image", "", "*", "**/*", 3],
)
def test_malformed_media_ranges(value):
    with pytest.raises(MalformedContentTypeError):
        parse_media_range(value)


INLINE = [
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/avif",
    "image/bmp",
    "IMAGE/PNG; name=x",
    "audio/mpeg",
    "audio/ogg; codecs=opus",
    "video/mp4",
    "video/webm",
    "text/plain; charset=utf-8",
    'text/plain; charset="ISO-8859-1"',
]
ATTACHMENT = [
    "image/svg+xml",
    "image/x-icon",
    "image/tiff",
    "text/plain",  # no charset
    "text/plain; charset=utf-7",
    "text/plain; charset=",
    "text/html",
    "text/html; charset=utf-8",
    "application/xhtml+xml",
    "text/xml",
    "application/xml",
    "application/javascript",
    "text/javascript",
    "application/json",
    "application/pdf",
    "application/octet-stream",
    "multipart/x-mixed-replace; boundary=x",
    "text/vtt",
    "text/css",
    "image/png,text/html",  # malformed
    "",
]


@pytest.mark.parametrize("value", INLINE)
def test_passive_types_are_inline(value):
    assert is_inline(value)


@pytest.mark.parametrize("value", ATTACHMENT)
def test_everything_else_is_an_attachment(value):
    assert not is_inline(value)


def test_download_headers_of_a_malformed_stored_type(tmp_path):
    """A type stored by another tool or an older version is never echoed into a header."""
    store = DirectoryDataStore(str(tmp_path), name="files")
    item = store.write_bytes("a/legacy page.png", b"<script>alert(1)</script>", "image/png")
    path = os.path.join(str(tmp_path), "a", "legacy page.png")
    legacy = DirectoryDataItem(store, item.key, path, os.stat(path), "image/png,text/html\r\nX: y", item.etag)
    assert download_headers(legacy) == {
        "Content-Type": "application/octet-stream",
        "Content-Disposition": "attachment; filename*=UTF-8''legacy%20page.png",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    assert download_headers(item)["Content-Disposition"] == "inline; filename*=UTF-8''legacy%20page.png"


@pytest.mark.parametrize(
    "content_type, csp",
    [
        ("image/png", "default-src 'none'; sandbox"),
        ("text/plain; charset=utf-8", "default-src 'none'; sandbox"),
        ("text/html", "default-src 'none'; sandbox"),
        # a browser's media document loads the URL again as media: it needs its origin
        ("audio/wav", "default-src 'none'; media-src 'self'; sandbox allow-same-origin"),
        ("video/mp4", "default-src 'none'; media-src 'self'; sandbox allow-same-origin"),
    ],
)
def test_every_download_is_sandboxed(tmp_path, content_type, csp):
    store = DirectoryDataStore(str(tmp_path), name="files")
    headers = download_headers(store.write_bytes("f", b"x", content_type))
    assert headers["Content-Security-Policy"] == csp and "allow-scripts" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
