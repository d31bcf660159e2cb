"""validate_post_policy, signing and policy encoding: the policy validator we own."""

import base64
import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone

import pytest

from persisty_data.errors import UploadRejectedError
from persisty_data.post_policy import (
    EXEMPT_FIELDS,
    SIGNATURE_FIELD,
    PolicyViolation,
    build_policy,
    content_length_range,
    decode_policy,
    encode_policy,
    parse_expiration,
    sign,
    validate_post_policy,
    verify_signature,
)

SECRET = b"k" * 32
NOW = datetime(2030, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
LATER = NOW + timedelta(minutes=5)


def policy(*conditions, expire_at=LATER):
    return build_policy(expire_at, list(conditions))


def codes(violations):
    return sorted(str(v) for v in violations)


def check(conditions, fields, file_size=None, now=NOW, implicit_fields=None):
    return codes(validate_post_policy(policy(*conditions), fields, file_size, now, implicit_fields))


# region: build / encode / decode


def test_build_policy_writes_expiration_in_utc_with_millis():
    plus_two = timezone(timedelta(hours=2))
    built = build_policy(datetime(2030, 6, 1, 14, 0, 5, 123456, tzinfo=plus_two), [{"key": "a"}])
    assert built == {"expiration": "2030-06-01T12:00:05.000Z", "conditions": [{"key": "a"}]}
    assert parse_expiration(built) == datetime(2030, 6, 1, 12, 0, 5, tzinfo=timezone.utc)


def test_encode_decode_round_trip_and_encoding_is_canonical():
    built = policy({"key": "a/b.txt"}, ["content-length-range", 0, 10], ["starts-with", "$Content-Type", "image/"])
    encoded = encode_policy(built)
    assert decode_policy(encoded) == built
    reordered = {"conditions": built["conditions"], "expiration": built["expiration"]}
    assert encode_policy(reordered) == encoded  # sorted keys: one string per policy
    assert json.loads(base64.b64decode(encoded)) == built


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "!!!not base64!!!",
        "eyJhIjo",  # truncated base64
        base64.b64encode(b"not json").decode(),
        base64.b64encode(b"\xff\xfe\x00").decode(),  # not UTF-8
        base64.b64encode(b"[1, 2]").decode(),  # JSON, not an object
        base64.b64encode(b'{"expiration": "2030-01-01T00:00:00Z"}').decode(),  # no conditions
        base64.b64encode(b'{"conditions": {"key": "a"}}').decode(),  # conditions not a list
        "ëÿ",  # not ASCII
    ],
)
def test_decode_policy_refuses_malformed_policies(encoded):
    with pytest.raises(UploadRejectedError) as info:
        decode_policy(encoded)
    assert info.value.code == "upload_rejected"
    assert info.value.detail == "malformed_policy"


# endregion

# region: sign / verify


def test_sign_is_hmac_sha256_hex_of_the_policy_string():
    encoded = encode_policy(policy({"key": "a"}))
    expected = hmac.new(SECRET, encoded.encode(), hashlib.sha256).hexdigest()
    assert sign(SECRET, encoded) == expected
    assert verify_signature(SECRET, encoded, expected)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda s: "",
        lambda s: s[:-1],
        lambda s: s + "0",
        lambda s: ("1" if s[0] != "1" else "2") + s[1:],
        lambda s: s.upper(),
        lambda s: "é" * len(s),  # not ASCII: refused, no exception
        lambda s: "\x00" * len(s),
        lambda s: sign(b"x" * 32, "whatever"),
    ],
)
def test_verify_signature_refuses_anything_but_the_exact_signature(tamper):
    encoded = encode_policy(policy({"key": "a"}))
    assert verify_signature(SECRET, encoded, tamper(sign(SECRET, encoded))) is False


def test_verify_signature_refuses_other_secret_and_other_message():
    encoded = encode_policy(policy({"key": "a"}))
    signature = sign(SECRET, encoded)
    assert verify_signature(b"K" * 32, encoded, signature) is False
    assert verify_signature(SECRET, encode_policy(policy({"key": "b"})), signature) is False


# endregion

# region: conditions


def test_exact_condition():
    assert check([{"key": "alice/a.txt"}], {"key": "alice/a.txt"}) == []
    assert check([{"key": "alice/a.txt"}], {"key": "alice/b.txt"}) == ["field_mismatch:key"]
    # values compare exactly (case-sensitive, no trimming)
    assert check([{"key": "alice/a.txt"}], {"key": "Alice/a.txt"}) == ["field_mismatch:key"]
    assert check([{"key": "alice/a.txt"}], {"key": "alice/a.txt "}) == ["field_mismatch:key"]


def test_eq_condition():
    assert check([["eq", "$key", "alice/a.txt"]], {"key": "alice/a.txt"}) == []
    assert check([["eq", "$key", "alice/a.txt"]], {"key": "alice/a.txtx"}) == ["field_mismatch:key"]


def test_starts_with_condition():
    conditions = [["starts-with", "$key", "alice/"]]
    assert check(conditions, {"key": "alice/x/y.txt"}) == []
    assert check(conditions, {"key": "alice/"}) == []
    assert check(conditions, {"key": "bob/alice/x"}) == ["field_mismatch:key"]
    assert check(conditions, {"key": "alice"}) == ["field_mismatch:key"]
    # an empty prefix allows any value, but the field must still be present
    assert check([["starts-with", "$Content-Type", ""]], {"content-type": "anything/at-all"}) == []
    assert check([["starts-with", "$Content-Type", ""]], {}) == ["missing_field:content-type"]


def test_content_length_range_is_inclusive():
    conditions = [["content-length-range", 10, 20]]
    for size in (10, 15, 20):
        assert check(conditions, {}, file_size=size) == []
    assert check(conditions, {}, file_size=9) == ["content_length_out_of_range"]
    assert check(conditions, {}, file_size=21) == ["content_length_out_of_range"]
    assert check(conditions, {}, file_size=None) == []  # size not known yet: not checked
    assert content_length_range(policy(*conditions)) == (10, 20)
    assert content_length_range(policy({"key": "a"})) is None


@pytest.mark.parametrize("bounds", [("0", 10), (0, "10"), (0, None), (0.5, 10)])
def test_content_length_range_with_non_integer_bounds_is_invalid(bounds):
    assert check([["content-length-range", *bounds]], {}, file_size=5) == ["invalid_condition:content-length-range"]


@pytest.mark.parametrize(
    "condition",
    [
        ["contains", "$key", "a"],  # unknown operator
        ["eq", "key", "a"],  # field without $
        ["starts-with", "key", "a"],
        ["eq", "$key"],  # wrong arity
        ["content-length-range", 0],
        {"key": "a", "Content-Type": "b"},  # two fields in one object
        {},
        "key",
        42,
    ],
)
def test_invalid_conditions_are_violations(condition):
    violations = validate_post_policy(policy(condition, {"key": "a"}), {"key": "a"}, now=NOW)
    assert [v.code for v in violations] == ["invalid_condition"]


def test_missing_field():
    assert check([{"key": "a"}, {"Content-Type": "text/plain"}], {"key": "a"}) == ["missing_field:content-type"]
    assert check([["eq", "$x-amz-meta-tag", "t"]], {}) == ["missing_field:x-amz-meta-tag"]


def test_every_violation_is_reported():
    conditions = [{"key": "a"}, {"Content-Type": "text/plain"}, ["content-length-range", 0, 1]]
    fields = {"key": "b", "extra": "1"}
    assert check(conditions, fields, file_size=5) == [
        "content_length_out_of_range",
        "field_mismatch:key",
        "field_not_in_policy:extra",
        "missing_field:content-type",
    ]


# endregion

# region: which fields need a condition


def test_field_not_in_policy():
    assert check([{"key": "a"}], {"key": "a", "success_action_status": "204"}) == [
        "field_not_in_policy:success_action_status"
    ]
    assert check([{"key": "a"}], {"key": "a", "Success_Action_Redirect": "https://x"}) == [
        "field_not_in_policy:success_action_redirect"
    ]


@pytest.mark.parametrize("name", sorted(EXEMPT_FIELDS | {"Policy", "X-Amz-Signature", "AWSAccessKeyId", "File"}))
def test_exempt_fields_need_no_condition(name):
    assert check([{"key": "a"}], {"key": "a", name: "anything"}) == []


@pytest.mark.parametrize("name", ["x-ignore-foo", "X-Ignore-Bar", "X-IGNORE-", "x-ignore-a-b-c"])
def test_x_ignore_fields_need_no_condition(name):
    assert check([{"key": "a"}], {"key": "a", name: "anything"}) == []


def test_x_ignore_is_a_prefix_not_a_substring():
    assert check([{"key": "a"}], {"key": "a", "my-x-ignore-foo": "1"}) == ["field_not_in_policy:my-x-ignore-foo"]
    assert check([{"key": "a"}], {"key": "a", "x-ignored": "1"}) == ["field_not_in_policy:x-ignored"]


def test_field_names_compare_case_insensitively():
    assert check([{"Content-Type": "text/plain"}], {"content-type": "text/plain"}) == []
    assert check([{"content-type": "text/plain"}], {"CONTENT-TYPE": "text/plain"}) == []
    assert check([["eq", "$KEY", "a"]], {"Key": "a"}) == []
    assert check([["starts-with", "$Key", "a"]], {"kEY": "abc"}) == []
    # ... but the values do not
    assert check([{"Content-Type": "text/plain"}], {"content-type": "TEXT/PLAIN"}) == ["field_mismatch:content-type"]


def test_implicit_fields_are_checked_but_a_posted_field_overrides_them():
    conditions = [{"bucket": "files"}, {"key": "a"}]
    assert check(conditions, {"key": "a"}, implicit_fields={"bucket": "files"}) == []
    assert check(conditions, {"key": "a"}, implicit_fields={"Bucket": "other"}) == ["field_mismatch:bucket"]
    assert check(conditions, {"key": "a"}) == ["missing_field:bucket"]
    # a client cannot satisfy the bucket condition by posting the bucket it was not given
    assert set(check(conditions, {"key": "a", "bucket": "files"}, implicit_fields={"bucket": "other"})) == {
        "field_mismatch:bucket"
    }
    # nor by posting a bucket other than the URL's
    assert set(check(conditions, {"key": "a", "bucket": "other"}, implicit_fields={"bucket": "files"})) == {
        "field_mismatch:bucket"
    }


# endregion

# region: expiry


def test_expired_policies():
    built = policy({"key": "a"}, expire_at=NOW)
    assert codes(validate_post_policy(built, {"key": "a"}, now=NOW - timedelta(seconds=1))) == []
    assert codes(validate_post_policy(built, {"key": "a"}, now=NOW)) == ["policy_expired"]
    assert codes(validate_post_policy(built, {"key": "a"}, now=NOW + timedelta(days=1))) == ["policy_expired"]
    # the default "now" is the real clock
    past = build_policy(datetime.now(timezone.utc) - timedelta(seconds=1), [{"key": "a"}])
    assert codes(validate_post_policy(past, {"key": "a"})) == ["policy_expired"]
    future = build_policy(datetime.now(timezone.utc) + timedelta(minutes=1), [{"key": "a"}])
    assert codes(validate_post_policy(future, {"key": "a"})) == []


@pytest.mark.parametrize(
    "expiration, code",
    [
        (None, "policy_without_expiration"),
        (1893456000, "policy_without_expiration"),
        ("tomorrow", "malformed_expiration"),
        ("2030-13-01T00:00:00Z", "malformed_expiration"),
    ],
)
def test_missing_or_malformed_expiration(expiration, code):
    built = {"conditions": [{"key": "a"}]}
    if expiration is not None:
        built["expiration"] = expiration
    assert codes(validate_post_policy(built, {"key": "a"}, now=NOW)) == [code]


def test_expiration_forms():
    for value in ("2030-06-01T12:00:01Z", "2030-06-01T12:00:01.000Z", "2030-06-01T12:00:01+00:00"):
        assert parse_expiration({"expiration": value}) == NOW + timedelta(seconds=1)
    # no zone: UTC
    assert parse_expiration({"expiration": "2030-06-01T12:00:01"}) == NOW + timedelta(seconds=1)
    # another zone: converted
    assert parse_expiration({"expiration": "2030-06-01T14:00:01+02:00"}) == NOW + timedelta(seconds=1)


# endregion


def test_violations_print_as_code_and_field():
    assert str(PolicyViolation("policy_expired")) == "policy_expired"
    assert str(PolicyViolation("field_mismatch", "key")) == "field_mismatch:key"


def test_signature_field_is_exempt_and_posted_as_named():
    assert SIGNATURE_FIELD == "x-persisty-data-signature"
    assert check([{"key": "a"}], {"key": "a", SIGNATURE_FIELD: "00"}) == []


def test_validates_policies_boto3_generates_for_s3():
    """The same validator tells what S3 would accept from a boto3 presigned POST form."""
    boto3 = pytest.importorskip("boto3")
    client = boto3.client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
    )
    post = client.generate_presigned_post(
        "my-bucket",
        "alice/a.txt",
        Fields={"Content-Type": "text/plain"},
        Conditions=[{"Content-Type": "text/plain"}, ["content-length-range", 0, 100]],
        ExpiresIn=300,
    )
    fields = post["fields"]
    decoded = decode_policy(fields["policy"])
    implicit = {"bucket": "my-bucket"}
    assert codes(validate_post_policy(decoded, fields, 50, implicit_fields=implicit)) == []
    assert codes(validate_post_policy(decoded, fields, 101, implicit_fields=implicit)) == [
        "content_length_out_of_range"
    ]
    assert codes(validate_post_policy(decoded, {**fields, "key": "bob/a.txt"}, 5, implicit_fields=implicit)) == [
        "field_mismatch:key"
    ]
    assert codes(validate_post_policy(decoded, fields, 5, implicit_fields={"bucket": "other"})) == [
        "field_mismatch:bucket"
    ]
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    assert codes(validate_post_policy(decoded, fields, 5, later, implicit)) == ["policy_expired"]
