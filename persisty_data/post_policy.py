"""
S3-style POST policies: build, sign (HMAC-SHA256, for the hosted endpoint) and validate.

A policy is ``{"expiration": "<ISO 8601 UTC>", "conditions": [...]}`` where each
condition is one of:

- ``{"field": "value"}`` or ``["eq", "$field", "value"]``: the form field equals value;
- ``["starts-with", "$field", "prefix"]``: the field starts with prefix ('' = any value);
- ``["content-length-range", min, max]``: the file's size in bytes, inclusive.

As on S3, every form field must be covered by a condition, except the file, the policy
itself, signature fields and ``x-ignore-*`` fields; field names compare case-insensitively.
validate_post_policy works on any such policy, including those boto3 generates for S3, so
tests can prove what S3 would accept or refuse (moto does not enforce POST policies).
"""

import base64
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Tuple

from persisty_data.errors import UploadRejectedError

POLICY_FIELD = "policy"
SIGNATURE_FIELD = "x-persisty-data-signature"
# Fields never covered by conditions (S3's rule, plus our signature field).
EXEMPT_FIELDS = {"file", "policy", "x-amz-signature", "signature", "awsaccesskeyid", SIGNATURE_FIELD}


@dataclass(frozen=True)
class PolicyViolation:
    code: str
    field: Optional[str] = None

    def __str__(self) -> str:
        return f"{self.code}:{self.field}" if self.field else self.code


def build_policy(expire_at: datetime, conditions: List[Any]) -> Dict[str, Any]:
    expiration = expire_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {"expiration": expiration, "conditions": conditions}


def encode_policy(policy: Mapping[str, Any]) -> str:
    raw = json.dumps(policy, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.b64encode(raw).decode("ascii")


def decode_policy(encoded: str) -> Dict[str, Any]:
    try:
        policy = json.loads(base64.b64decode(encoded.encode("ascii"), validate=True))
    except (ValueError, UnicodeError, TypeError):
        raise UploadRejectedError("malformed_policy") from None
    if not isinstance(policy, dict) or not isinstance(policy.get("conditions"), list):
        raise UploadRejectedError("malformed_policy")
    return policy


def sign(secret: bytes, message: str) -> str:
    return hmac.digest(secret, message.encode("utf-8"), "sha256").hex()


def verify_signature(secret: bytes, message: str, signature: str) -> bool:
    """Constant-time comparison of the expected and the given signature."""
    expected = sign(secret, message)
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii", "replace"))


def parse_expiration(policy: Mapping[str, Any]) -> datetime:
    value = policy.get("expiration")
    if not isinstance(value, str):
        raise UploadRejectedError("policy_without_expiration")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UploadRejectedError("malformed_expiration") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


def _normalize(conditions: List[Any]) -> List[Tuple[str, str, Any]]:
    """Each condition as (operator, lower-case field or '', argument)."""
    normalized = []
    for condition in conditions:
        if isinstance(condition, dict) and len(condition) == 1:
            ((name, value),) = condition.items()
            normalized.append(("eq", str(name).lower(), value))
        elif isinstance(condition, list) and len(condition) == 3:
            operator = str(condition[0]).lower()
            if operator == "content-length-range":
                normalized.append((operator, "", (condition[1], condition[2])))
            elif operator in ("eq", "starts-with") and str(condition[1]).startswith("$"):
                normalized.append((operator, str(condition[1])[1:].lower(), condition[2]))
            else:
                normalized.append(("invalid", "", condition))
        else:
            normalized.append(("invalid", "", condition))
    return normalized


def validate_post_policy(
    policy: Mapping[str, Any],
    fields: Mapping[str, str],
    file_size: Optional[int] = None,
    now: Optional[datetime] = None,
    implicit_fields: Optional[Mapping[str, str]] = None,
) -> List[PolicyViolation]:
    """
    Every reason the upload breaks the policy ([] if it satisfies it). fields are the
    form fields as posted; file_size the size of the file (None: not known yet, size not
    checked); implicit_fields are values that come from the URL, e.g. {"bucket": ...}.
    """
    violations: List[PolicyViolation] = []
    now = now or datetime.now(timezone.utc)
    try:
        if parse_expiration(policy) <= now:
            violations.append(PolicyViolation("policy_expired"))
    except UploadRejectedError as exc:
        violations.append(PolicyViolation(exc.detail or exc.code))
    # Values from the URL (the bucket) win: a posted field cannot stand in for them.
    implicit = {k.lower(): v for k, v in (implicit_fields or {}).items()}
    posted = {k.lower(): v for k, v in fields.items()}
    values = {**posted, **implicit}
    mismatched = {name for name, value in implicit.items() if name in posted and posted[name] != value}
    covered = set()
    for operator, name, argument in _normalize(list(policy.get("conditions") or [])):
        if operator == "invalid":
            violations.append(PolicyViolation("invalid_condition", json.dumps(argument)))
            continue
        if operator == "content-length-range":
            low, high = argument
            if not (isinstance(low, int) and isinstance(high, int)):
                violations.append(PolicyViolation("invalid_condition", "content-length-range"))
            elif file_size is not None and not low <= file_size <= high:
                violations.append(PolicyViolation("content_length_out_of_range"))
            continue
        covered.add(name)
        value = values.get(name)
        if name in mismatched:
            continue  # reported once below
        if value is None:
            violations.append(PolicyViolation("missing_field", name))
        elif (operator == "eq" and value != argument) or (
            operator == "starts-with" and not value.startswith(str(argument))
        ):
            violations.append(PolicyViolation("field_mismatch", name))
    violations.extend(PolicyViolation("field_mismatch", name) for name in sorted(mismatched))
    for name in fields:
        lowered = name.lower()
        if lowered in EXEMPT_FIELDS or lowered.startswith("x-ignore-") or lowered in covered:
            continue
        violations.append(PolicyViolation("field_not_in_policy", lowered))
    return violations


def content_length_range(policy: Mapping[str, Any]) -> Optional[Tuple[int, int]]:
    """The (min, max) size the policy allows, or None if it sets no range."""
    for operator, _, argument in _normalize(list(policy.get("conditions") or [])):
        if operator == "content-length-range":
            return argument
    return None
