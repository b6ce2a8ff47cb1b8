"""moto 5.2.5 with IAM authorization, in a process of its own, with its IAM gaps closed.

Run as `python iam_moto.py AUDIT_FILE`: prints its endpoint on stdout and serves until stdin
closes. A process of its own, because moto's IAM switch and backends are process-global: the
other test tiers' moto server (IAM off) never sees it. IAM starts off, so the test can deploy as
an administrator; `POST /moto-api/reset-auth` with `0` switches it on.

What moto 5.2.5 gets wrong, and what this file does about it (nothing else is changed):
  1. It authorizes an API operation under its own name, but AWS authorizes SendMessageBatch as
     sqs:SendMessage, DeleteMessageBatch as sqs:DeleteMessage, ChangeMessageVisibilityBatch as
     sqs:ChangeMessageVisibility, and each item of a DynamoDB transaction as its own action
     (an Update as dynamodb:UpdateItem). `CHECKS` maps each operation to the IAM checks AWS makes.
  2. It authorizes DynamoDB, Secrets Manager and CloudFormation calls against resource "*", so a
     statement scoped to a table, secret or stack never matches. `CHECKS` names the resource
     (from TableName/RequestItems/TransactItems, SecretId, StackName) as AWS does.
  3. It prefixes an action with the service's signing name, so CloudWatch's GetMetricStatistics
     becomes monitoring:GetMetricStatistics; IAM calls it cloudwatch:GetMetricStatistics.
  4. It cannot read inline policies that CloudFormation created (`KeyError: 'policy_document'`:
     the document is a dict, not a string).
  5. Its S3 check is separate (`_authenticate_and_authorize_s3_action`, on the bucket or object
     ARN); it is kept as it is and only recorded in the audit like the others.
  6. Its Lambda API leaves a GET request's headers in the request's form data, and moto then
     signs them as the body: every GET (GetFunctionConfiguration) fails SignatureDoesNotMatch. A
     GET is checked with the empty body the client signed.
  7. It authorizes Lambda calls against resource "*"; `CHECKS` names the function's ARN from the path.
Every authorization decision is appended to AUDIT_FILE as a JSON line (principal, action,
resource, allowed), so the tests can compare what each role used with what it was granted.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from typing import Any

Check = tuple[str, str]  # (IAM action without the service prefix, resource ARN)

_audit_lock = threading.Lock()


def _table_arn(handler: Any, name: str) -> str:
    if name.startswith("arn:"):
        return name
    return f"arn:aws:dynamodb:{handler.region}:{handler.current_account}:table/{name}"


def _json_body(handler: Any) -> dict[str, Any]:
    body = handler.body  # DynamoDB's handler has parsed it already
    if isinstance(body, dict):
        return body
    try:
        return dict(json.loads(body or "{}"))
    except (TypeError, ValueError):
        return {}


def _dynamodb(handler: Any, api: str, default: str) -> list[Check]:
    body = _json_body(handler)
    if api in ("BatchGetItem", "BatchWriteItem"):
        return [(api, _table_arn(handler, table)) for table in body.get("RequestItems", {})]
    if api in ("TransactWriteItems", "TransactGetItems"):
        actions = {
            "Put": "PutItem",
            "Update": "UpdateItem",
            "Delete": "DeleteItem",
            "ConditionCheck": "ConditionCheckItem",
            "Get": "GetItem",
        }
        checks = []
        for item in body.get("TransactItems", []):
            for kind, request in item.items():
                checks.append((actions[kind], _table_arn(handler, request["TableName"])))
        return checks
    if "TableName" in body:
        return [(api, _table_arn(handler, body["TableName"]))]
    return [(api, default)]


def _secretsmanager(handler: Any, api: str, default: str) -> list[Check]:
    from moto.secretsmanager.models import secretsmanager_backends

    secret_id = _json_body(handler).get("SecretId")
    if not secret_id:
        return [(api, default)]
    secrets = secretsmanager_backends[handler.current_account][handler.region].secrets
    found = secrets.get(secret_id)
    # An unknown secret: AWS checks the permission on the ARN asked for (then answers "not found").
    return [(api, found.arn if found is not None else secret_id)]


def _cloudformation(handler: Any, api: str, default: str) -> list[Check]:
    from moto.cloudformation.models import cloudformation_backends

    name = handler._get_param("StackName")
    if not name:
        return [(api, default)]
    try:
        stack = cloudformation_backends[handler.current_account][handler.region].get_stack(name)
        return [(api, stack.stack_id)]
    except Exception:  # unknown stack: authorize against the name asked for
        return [(api, f"arn:aws:cloudformation:{handler.region}:{handler.current_account}:stack/{name}/*")]


SQS_BATCH = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def _sqs(handler: Any, api: str, default: str) -> list[Check]:
    source = _json_body(handler).get("SourceArn")  # the move-task calls name a queue ARN, no URL
    return [(SQS_BATCH.get(api, api), source or default)]


def _as_called(handler: Any, api: str, resource: str) -> list[Check]:
    return [(api, resource)]


def _lambda(handler: Any, api: str, default: str) -> list[Check]:
    parts = handler.raw_path.split("/")  # /2015-03-31/functions/NAME/configuration
    if len(parts) > 3 and parts[2] == "functions":
        name = parts[3]
        if name.startswith("arn:"):
            return [(api, name)]
        return [(api, f"arn:aws:lambda:{handler.region}:{handler.current_account}:function:{name}")]
    return [(api, default)]


IAM_PREFIX = {"monitoring": "cloudwatch"}  # signing name -> IAM action prefix, where they differ

CHECKS: dict[str, Callable[[Any, str, str], list[Check]]] = {
    "sqs": _sqs,
    "dynamodb": _dynamodb,
    "secretsmanager": _secretsmanager,
    "cloudformation": _cloudformation,
    "lambda": _lambda,
}


def patch_moto(audit_path: str) -> None:
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam.access_control import IAMPolicy, IAMRequest

    original_policy_init = IAMPolicy.__init__

    def policy_init(self: Any, policy: Any) -> None:  # gap 4
        if isinstance(policy, dict) and "policy_document" not in policy:
            policy = json.dumps(policy)
        elif isinstance(policy, dict) and isinstance(policy["policy_document"], dict):
            policy = json.dumps(policy["policy_document"])
        original_policy_init(self, policy)

    def audit(record: dict[str, Any]) -> None:
        with _audit_lock, open(audit_path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")

    def authorize(self: Any, resource: str = "*") -> None:  # gaps 1 to 3
        if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
            ActionAuthenticatorMixin.request_count += 1
            return
        if self.headers.get("X-Amz-Target") in ActionAuthenticatorMixin.PUBLIC_OPERATIONS:
            return
        api = self._get_action()
        service = self.headers.get("Authorization", "").split("Credential=", 1)[-1].split("/")[3:4]
        service_name = service[0] if service else ""
        checks = CHECKS.get(service_name, _as_called)(self, api, resource)
        path = self.raw_path + (f"?{self.uri.split('?', 1)[1]}" if "?" in self.uri else "")
        data = {} if self.method == "GET" and not self.raw_body else self.data  # gap 6
        signed = False
        for action, arn in checks:
            request = IAMRequest(
                account_id=self.current_account,
                method=self.method,
                path=path,
                data=data,
                body=self.raw_body,
                headers=self.headers,
                action=action,
            )
            request._action = f"{IAM_PREFIX.get(service_name, service_name)}:{action}"
            if not signed:
                request.check_signature()
                signed = True
            record = {"principal": request._access_key.arn, "action": request._action, "resource": arn, "api": api}
            try:
                request.check_action_permitted(arn)
            except Exception:
                audit({**record, "allowed": False})
                raise
            audit({**record, "allowed": True})

    def authorize_s3(self: Any, bucket_name: str | None = None, key_name: str | None = None) -> None:
        """moto's own S3 check (the object or bucket ARN, SigV4 for S3), recorded in the audit as well."""
        from moto.iam.access_control import S3IAMRequest

        if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
            ActionAuthenticatorMixin.request_count += 1
            return
        name = f"{bucket_name or '*'}/{key_name}" if key_name else (bucket_name or "*")
        arn = f"arn:aws:s3:::{name}"
        path = self.raw_path + (f"?{self.uri.split('?', 1)[1]}" if "?" in self.uri else "")
        api = self._get_action()
        request = S3IAMRequest(
            account_id=self.current_account,
            method=self.method,
            path=path,
            data=self.data,
            body=self.raw_body,
            headers=self.headers,
            action=api,
        )
        request.check_signature()
        record = {"principal": request._access_key.arn, "action": request._action, "resource": arn, "api": api}
        try:
            request.check_action_permitted(arn)
        except Exception:
            audit({**record, "allowed": False})
            raise
        audit({**record, "allowed": True})

    IAMPolicy.__init__ = policy_init  # type: ignore[method-assign]
    ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = authorize  # type: ignore[method-assign]
    ActionAuthenticatorMixin._authenticate_and_authorize_s3_action = authorize_s3  # type: ignore[method-assign]


def main() -> None:
    audit_path = sys.argv[1]
    patch_moto(audit_path)
    import logging

    from traede_local.local_stack import MotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = MotoServer()
    print(server.endpoint, flush=True)
    sys.stdin.read()  # serve until the test closes our stdin (or ends)
    server.stop()


if __name__ == "__main__":
    main()
