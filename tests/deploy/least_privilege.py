"""What each role may do, and the call in the code that needs it: one row per (action, resource).

The tests hold the template to this table both ways: a role granting anything not listed here
fails (tests/deploy/test_least_privilege.py, on the translated template), and so does a listed
row that the deployed pipeline never used (tests/deploy/test_deploy.py, from moto's record of
every authorization), unless the row says who else uses it (Lambda's runtime, X-Ray, the
Scheduler), since those callers are not part of the local run.

Resources are logical ids of template.yaml, or "*" where AWS has no resource-level permission.
A new grant is a new row here (with its reason) and a statement in the template's IAM section;
"LargeOrderBucket/*" stands for the bucket's objects (`${LargeOrderBucket.Arn}/*`). A DynamoDB
TransactWriteItems is authorised per item, as dynamodb:UpdateItem (already listed).
"""

from __future__ import annotations

# Who uses a row besides the function's own code (so the local run cannot show it being used).
RUNTIME = "Lambda runtime: writes the function's logs"
XRAY = "Lambda runtime: X-Ray active tracing (no resource-level permissions exist)"
SCHEDULER = "EventBridge Scheduler: invokes the poller"
# Never called; S3 consults it on GetObject: a missing key is then 404 NoSuchKey, else 403 AccessDenied.
S3_NOT_FOUND = "S3: GetObject of a missing object answers NoSuchKey (LargeOrderMissing), not AccessDenied"

# Used only when a ledger write's answer was lost: `ExportLedger` reads the item back to see whether it took effect.
READ_BACK = "ledger.ExportLedger: reads back a claim whose answer was lost"

# role logical id -> {(IAM action, resource logical id or "*"): the call that needs it}
ALLOWED: dict[str, dict[tuple[str, str], str]] = {
    "PollerRole": {
        ("logs:CreateLogStream", "PollerLogGroup"): RUNTIME,
        ("logs:PutLogEvents", "PollerLogGroup"): RUNTIME,
        ("xray:PutTraceSegments", "*"): XRAY,
        ("xray:PutTelemetryRecords", "*"): XRAY,
        ("secretsmanager:GetSecretValue", "TraedeSecret"): "credentials.SecretReader: the Traede token and app key",
        ("dynamodb:UpdateItem", "LedgerTable"): "ledger.ExportLedger: claims, releases, record_poll, sightings",
        ("dynamodb:BatchGetItem", "LedgerTable"): READ_BACK,
        ("sqs:SendMessage", "OrderQueue"): "queue.QueueWriter.send: SendMessageBatch of the orders",
        ("sqs:SendMessage", "DeadLetterQueue"): "poll.Poller._park_invalid: an export entry that is not an order",
        ("s3:PutObject", "LargeOrderBucket/*"): "claim_check.ClaimCheck.offload: an order over the threshold",
    },
    "ForwarderRole": {
        ("logs:CreateLogStream", "ForwarderLogGroup"): RUNTIME,
        ("logs:PutLogEvents", "ForwarderLogGroup"): RUNTIME,
        ("xray:PutTraceSegments", "*"): XRAY,
        ("xray:PutTelemetryRecords", "*"): XRAY,
        ("secretsmanager:GetSecretValue", "TraedeSecret"): "credentials.SecretReader: Traede, to mark as exported",
        ("secretsmanager:GetSecretValue", "TargetSecret"): "credentials.SecretReader: the receiving system's headers",
        ("dynamodb:BatchGetItem", "LedgerTable"): "ledger.ExportLedger.get_many: the batch's entries",
        ("dynamodb:UpdateItem", "LedgerTable"): "ledger.ExportLedger: delivery leases, records, marks",
        ("sqs:ReceiveMessage", "OrderQueue"): "Lambda's SQS event source mapping: receives the batches",
        ("sqs:DeleteMessage", "OrderQueue"): "Lambda's SQS event source mapping: deletes what succeeded",
        ("sqs:GetQueueAttributes", "OrderQueue"): "Lambda's SQS event source mapping: reads the queue",
        ("sqs:SendMessage", "DeadLetterQueue"): "forward.Forwarder: parks a permanently rejected order",
        ("s3:GetObject", "LargeOrderBucket/*"): "claim_check.ClaimCheck.resolve: a large order's body",
        ("s3:ListBucket", "LargeOrderBucket"): S3_NOT_FOUND,
    },
    "PollScheduleRole": {
        ("lambda:InvokeFunction", "PollerFunction"): SCHEDULER,
    },
}

# The secrets are template resources (TraedeSecret, TargetSecret) or, with the Existing*SecretArn
# parameters, given ARNs; both count as that secret.
SECRET_PARAMETERS = {"ExistingTraedeSecretArn": "TraedeSecret", "ExistingTargetSecretArn": "TargetSecret"}

# Which role each function runs with, and who else the role is for.
FUNCTION_ROLES = {"PollerFunction": "PollerRole", "ForwarderFunction": "ForwarderRole"}
