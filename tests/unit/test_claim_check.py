import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from moto import mock_aws

from traede_export.claim_check import (
    LEGACY_POINTER_CLASS,
    MAX_THRESHOLD_BYTES,
    POINTER_CLASS,
    SIZE_ATTRIBUTE,
    ClaimCheck,
    Pointer,
    is_pointer,
    object_key,
    payload_size,
)
from traede_export.errors import LargeOrderMismatch, LargeOrderMissing
from traede_export.events import MismatchedLargeOrder, UnresolvedLargeOrder, read_record
from traede_export.models import InboundOrder, OrderRef, idempotency_key, order_attributes

BUCKET = "large-orders"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_the_pointer_is_the_extended_clients_format() -> None:
    body = Pointer(BUCKET, "orders/1/v/abc.json").body()
    assert json.loads(body) == [
        "software.amazon.payloadoffloading.PayloadS3Pointer",
        {"s3BucketName": BUCKET, "s3Key": "orders/1/v/abc.json"},
    ]
    assert Pointer.parse(body) == Pointer(BUCKET, "orders/1/v/abc.json")


@pytest.mark.parametrize(
    "body",
    [
        '{"id": 1}',
        "[1, 2]",
        "[not json",
        json.dumps(["some.other.Pointer", {"s3BucketName": "b", "s3Key": "k"}]),
        json.dumps([POINTER_CLASS, {"s3BucketName": "b"}]),
        json.dumps([POINTER_CLASS, {"s3BucketName": "", "s3Key": "k"}]),
        "",
        None,
    ],
)
def test_other_bodies_are_not_pointers(body: str | None) -> None:
    assert not is_pointer(body)


def test_offload_stores_the_exact_bytes_and_resolve_gives_them_back(s3: Any) -> None:
    claims = ClaimCheck(s3, BUCKET, threshold=1024)
    body = json.dumps({"id": 7, "note": "æøå " + "x" * 2000}, ensure_ascii=False)
    assert claims.is_large(body) and not claims.is_large("{}")
    key = object_key(7, "2026-01-01T00:00:00.000000Z", body.encode())
    pointer_body, attributes = claims.offload(key, body, {"order_id": {"DataType": "String", "StringValue": "7"}})

    assert attributes["order_id"]["StringValue"] == "7"  # existing attributes kept
    assert attributes[SIZE_ATTRIBUTE] == {"DataType": "Number", "StringValue": str(len(body.encode()))}
    assert payload_size(attributes) == len(body.encode())
    stored = s3.get_object(Bucket=BUCKET, Key=key)
    assert stored["ContentType"] == "application/json"
    pointer = Pointer.parse(pointer_body)
    assert pointer is not None and claims.resolve(pointer) == body


def test_the_key_is_content_addressed_per_order_and_version() -> None:
    a = object_key(7, "v1", b"{}")
    assert a == object_key(7, "v1", b"{}") and a.startswith("orders/7/v1/") and a.endswith(".json")
    assert a != object_key(7, "v1", b"{ }") != object_key(7, "v2", b"{}")


def test_a_missing_object_is_a_clear_error(s3: Any) -> None:
    claims = ClaimCheck(s3, BUCKET)
    with pytest.raises(LargeOrderMissing, match=r"orders/1/gone\.json is missing"):
        claims.resolve(Pointer(BUCKET, "orders/1/gone.json"))


def test_a_pointer_to_another_bucket_is_refused(s3: Any) -> None:
    with pytest.raises(LargeOrderMissing, match="not this stack's"):
        ClaimCheck(s3, BUCKET).resolve(Pointer("someone-elses", "orders/1/x.json"))


@pytest.mark.parametrize("threshold", [0, MAX_THRESHOLD_BYTES + 1])
def test_a_threshold_outside_the_safe_range_is_refused(threshold: int) -> None:
    with pytest.raises(ValueError, match="threshold"):
        no_client: Any = None  # refused before the client is used
        ClaimCheck(no_client, BUCKET, threshold)


def _record(body: str, attributes: dict[str, dict[str, str]]) -> SQSRecord:
    return SQSRecord(
        {
            "messageId": "m-1",
            "body": body,
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {
                k: {"stringValue": v["StringValue"], "dataType": v["DataType"]} for k, v in attributes.items()
            },
        }
    )


def test_reading_a_pointer_record_gives_the_order_and_keeps_the_pointer_for_parking(s3: Any) -> None:
    claims = ClaimCheck(s3, BUCKET, threshold=1024)
    order = {"id": 7, "updated_at": "2026-01-01T00:00:00Z", "lines": ["x" * 2000]}
    body = json.dumps(order)
    attributes = order_attributes("erp", OrderRef.from_order(order), "run-1", None)
    key = object_key(7, OrderRef.from_order(order).version, body.encode())
    pointer_body, with_size = claims.offload(key, body, attributes)

    read = read_record(_record(pointer_body, with_size), claims)
    assert isinstance(read, InboundOrder)
    assert (read.ref.order_id, read.body, read.message_body) == (7, body, pointer_body)
    assert read.key("erp") == idempotency_key("erp", OrderRef.from_order(order))

    plain = read_record(_record(body, attributes), claims)
    assert isinstance(plain, InboundOrder) and plain.message_body == plain.body == body

    pointer = Pointer.parse(pointer_body)
    assert pointer is not None
    s3.delete_object(Bucket=BUCKET, Key=pointer.key)
    gone = read_record(_record(pointer_body, with_size), claims)
    assert isinstance(gone, UnresolvedLargeOrder) and gone.missing
    assert (gone.ref, gone.run_id) == (OrderRef.from_order(order), "run-1")  # so its lease can be given back
    assert "is missing" in gone.reason


@pytest.mark.parametrize("body", ["[" * 100_000 + "]" * 100_000, "[" + "9" * 5000 + "]", "[1, 2"])
def test_a_body_that_is_not_a_pointer_is_none_whatever_it_holds(body: str) -> None:
    assert Pointer.parse(body) is None


def test_an_order_is_offloaded_under_its_versions_content_addressed_key(s3: Any) -> None:
    claims = ClaimCheck(s3, BUCKET, threshold=1024)
    ref, body = OrderRef(7, "2026-01-01T00:00:00Z"), json.dumps({"id": 7, "lines": ["x" * 2000]})
    pointer_body, _ = claims.offload_order(ref, body, {})
    pointer = Pointer.parse(pointer_body)
    assert pointer is not None and pointer.key == object_key(7, ref.version, body.encode())
    assert claims.resolve(pointer) == body


def test_the_older_extended_clients_pointer_class_is_read() -> None:
    body = json.dumps([LEGACY_POINTER_CLASS, {"s3BucketName": BUCKET, "s3Key": "k"}])
    assert Pointer.parse(body) == Pointer(BUCKET, "k")


def _offloaded(claims: ClaimCheck, order: dict[str, Any], key: str | None = None) -> tuple[str, Any]:
    body = json.dumps(order)
    ref = OrderRef.from_order(order)
    return claims.offload(
        key or object_key(ref.order_id, ref.version, body.encode()), body, order_attributes("erp", ref, "run-1", None)
    )


def test_an_object_replaced_in_the_bucket_is_a_mismatch(s3: Any) -> None:
    claims = ClaimCheck(s3, BUCKET, threshold=1024)
    mine = {"id": 7, "updated_at": "2026-01-01T00:00:00Z", "lines": ["x" * 2000]}
    pointer_body, attributes = _offloaded(claims, mine)
    pointer = Pointer.parse(pointer_body)
    assert pointer is not None
    for replacement, what in (
        ({**mine, "id": 8}, "it holds order 8, its message names order 7"),
        ({**mine, "updated_at": "2026-02-01T00:00:00Z"}, "it holds version 2026-02-01T00:00:00.000000Z of order 7"),
        ({**mine, "lines": ["y" * 2000]}, "does not hold the bytes its key names"),  # same id and version
    ):
        s3.put_object(Bucket=BUCKET, Key=pointer.key, Body=json.dumps(replacement).encode())
        with pytest.raises(LargeOrderMismatch):
            claims.resolve(pointer)
        read = read_record(_record(pointer_body, attributes), claims)
        assert isinstance(read, MismatchedLargeOrder), what
        assert what in read.reason and pointer.key in read.reason
        assert (read.ref, read.run_id, read.body) == (OrderRef.from_order(mine), "run-1", pointer_body)


def test_a_key_of_another_form_is_checked_against_the_message_only(s3: Any) -> None:
    claims = ClaimCheck(s3, BUCKET, threshold=1024)
    mine = {"id": 7, "updated_at": "2026-01-01T00:00:00Z", "lines": ["x" * 2000]}
    pointer_body, attributes = _offloaded(claims, mine, key="3f8c1a52-6d6e-4e55-9c1f-1b2b3c4d5e6f")  # awslabs style
    assert isinstance(read_record(_record(pointer_body, attributes), claims), InboundOrder)
    pointer = Pointer.parse(pointer_body)
    assert pointer is not None
    s3.put_object(Bucket=BUCKET, Key=pointer.key, Body=json.dumps({**mine, "id": 8}).encode())
    assert isinstance(read_record(_record(pointer_body, attributes), claims), MismatchedLargeOrder)
