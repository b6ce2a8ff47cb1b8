"""Claim-check for large orders: the body goes to S3 and the message carries a pointer.

The pointer is the format of AWS's SQS extended client (Java, Python, .NET), so other tools
can read the queue: the body is the JSON array
`["software.amazon.payloadoffloading.PayloadS3Pointer", {"s3BucketName": ..., "s3Key": ...}]`
and the `ExtendedPayloadSize` attribute (Number) holds the original body's size in bytes.
Older clients' pointer class (`com.amazon.sqs.javamessaging.MessageS3Pointer`) and size attribute
(`SQSLargePayloadSize`) are read too, never written.
The awslabs library itself is not used: it monkey-patches boto3 and does nothing for Lambda events.

The key is content-addressed (`orders/<id>/<version>/<sha256>.json`): `resolve` refuses an object
whose bytes are not the ones its key names, i.e. one replaced in the bucket.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from traede_export.errors import LargeOrderMismatch, LargeOrderMissing
from traede_export.models import OrderRef, whole_number

if TYPE_CHECKING:  # boto3-stubs: types only, no import cost
    from mypy_boto3_s3 import S3Client

POINTER_CLASS = "software.amazon.payloadoffloading.PayloadS3Pointer"
LEGACY_POINTER_CLASS = "com.amazon.sqs.javamessaging.MessageS3Pointer"  # older extended clients; read, never written
SIZE_ATTRIBUTE = "ExtendedPayloadSize"
LEGACY_SIZE_ATTRIBUTE = "SQSLargePayloadSize"  # older extended clients; read, never written
# Bodies above this go to S3. Its ceiling keeps a batch of 10 within Lambda's 6 MB payload:
# 10 x (2 x 262,144 + 2,048) = 5,263,360 bytes (see template.yaml, LARGE_ORDER_THRESHOLD_BYTES).
MAX_THRESHOLD_BYTES = 256 * 1024
MIN_THRESHOLD_BYTES = 1024
CONTENT_TYPE = "application/json"
_MISSING_CODES = {"NoSuchKey", "404", "NotFound", "NoSuchBucket"}
_DIGEST = re.compile(r"(?:^|/)([0-9a-f]{64})\.json$")
_ORDER_KEY = re.compile(r"^orders/(\d{1,19})/([^/]+)/[0-9a-f]{64}\.json$")

Attributes = dict[str, dict[str, str]]


@dataclass(frozen=True)
class Pointer:
    bucket: str
    key: str

    def body(self) -> str:
        return json.dumps([POINTER_CLASS, {"s3BucketName": self.bucket, "s3Key": self.key}])

    @classmethod
    def parse(cls, body: str | None) -> Pointer | None:
        """The pointer a message body holds, or None when the body is not one."""
        if not body or not body.lstrip().startswith("["):
            return None  # an order is a JSON object: skip the parse for every small order
        try:
            data: Any = json.loads(body)
        except (ValueError, RecursionError):  # not JSON, a huge int, or nested too deep: not a pointer
            return None
        if not (
            isinstance(data, list)
            and len(data) == 2
            and data[0] in (POINTER_CLASS, LEGACY_POINTER_CLASS)
            and isinstance(data[1], dict)
        ):
            return None
        bucket, key = data[1].get("s3BucketName"), data[1].get("s3Key")
        if not isinstance(bucket, str) or not isinstance(key, str) or not bucket or not key:
            return None
        return cls(bucket, key)


def is_pointer(body: str | None) -> bool:
    return Pointer.parse(body) is not None


def payload_size(attributes: Attributes) -> int | None:
    """The original size a pointer message declares, if any."""
    for name in (SIZE_ATTRIBUTE, LEGACY_SIZE_ATTRIBUTE):
        size = whole_number(attributes.get(name, {}).get("StringValue"))
        if size is not None:
            return size
    return None


def is_large(body: str, threshold: int = MAX_THRESHOLD_BYTES) -> bool:
    """Over the threshold: the order travels as a pointer to its S3 object."""
    return len(body.encode("utf-8")) > threshold


def object_key(order_id: int, version: str, body: bytes) -> str:
    """Content-addressed: a second poll of the same version rewrites the same object."""
    return f"orders/{order_id}/{version}/{hashlib.sha256(body).hexdigest()}.json"


def named_by_key(key: str) -> tuple[int, str] | None:
    """The order id and version an `object_key` names; None for a key of another form."""
    match = _ORDER_KEY.match(key)
    return (int(match.group(1)), match.group(2)) if match else None


class ClaimCheck:
    """Puts large bodies in one bucket and reads them back; S3 errors other than 'missing' propagate."""

    def __init__(self, s3: S3Client, bucket: str, threshold: int = MAX_THRESHOLD_BYTES) -> None:
        if not MIN_THRESHOLD_BYTES <= threshold <= MAX_THRESHOLD_BYTES:
            raise ValueError(f"threshold must be between {MIN_THRESHOLD_BYTES} and {MAX_THRESHOLD_BYTES} bytes")
        self._s3 = s3
        self.bucket = bucket
        self.threshold = threshold

    def is_large(self, body: str) -> bool:
        return is_large(body, self.threshold)

    def offload(self, key: str, body: str, attributes: Attributes) -> tuple[str, Attributes]:
        """Store the body; returns the pointer body and the attributes with the size added."""
        data = body.encode("utf-8")
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=CONTENT_TYPE)
        size = {SIZE_ATTRIBUTE: {"DataType": "Number", "StringValue": str(len(data))}}
        return Pointer(self.bucket, key).body(), {**attributes, **size}

    def offload_order(self, ref: OrderRef, body: str, attributes: Attributes) -> tuple[str, Attributes]:
        """`offload` under the order version's content-addressed key (see `object_key`)."""
        return self.offload(object_key(ref.order_id, ref.version, body.encode("utf-8")), body, attributes)

    def resolve(self, pointer: Pointer) -> str:
        """The stored body. LargeOrderMissing when the object (or bucket) is not there,
        LargeOrderMismatch when its bytes are not the ones a content-addressed key names."""
        if pointer.bucket != self.bucket:
            # Only this stack's bucket is readable; say so rather than report AccessDenied.
            raise LargeOrderMissing(f"pointer names bucket {pointer.bucket!r}, not this stack's {self.bucket!r}")
        try:
            answer = self._s3.get_object(Bucket=pointer.bucket, Key=pointer.key)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING_CODES:
                raise LargeOrderMissing(
                    f"large order object s3://{pointer.bucket}/{pointer.key} is missing ({code}); "
                    "deleted or expired by the lifecycle rule"
                ) from None
            raise
        data = bytes(answer["Body"].read())
        digest = _DIGEST.search(pointer.key)
        if digest is not None and hashlib.sha256(data).hexdigest() != digest.group(1):
            raise LargeOrderMismatch(
                f"large order object s3://{pointer.bucket}/{pointer.key} does not hold the bytes its key names"
                " (SHA-256 differs): it was replaced in the bucket; not delivered",
                data,
            )
        return data.decode("utf-8")
