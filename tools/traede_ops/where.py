"""Which deployed stack a command acts on: the `--stack`/`--queue-url`/... options and the Target they name."""

from __future__ import annotations

import argparse
import os

from traede_ops import ops


def options() -> argparse.ArgumentParser:
    """The options every AWS command takes, as an argparse parent."""
    parent = argparse.ArgumentParser(add_help=False)
    g = parent.add_argument_group("where (a stack's outputs, or explicit resources)")
    g.add_argument("--stack", help="CloudFormation stack name: reads its outputs and SystemId parameter")
    g.add_argument("--queue-url", help="order queue URL (overrides the stack output QueueUrl)")
    g.add_argument("--dlq-url", help="dead-letter queue URL (overrides DeadLetterQueueUrl)")
    g.add_argument("--table", help="ledger table name (overrides LedgerTableName)")
    g.add_argument("--function", help="poller function name (overrides PollerFunctionName)")
    g.add_argument("--bucket", help="large-order bucket (overrides LargeOrderBucketName), for replay")
    g.add_argument("--system-id", help="Traede system id (default: $TRAEDE_SYSTEM_ID, then the stack's SystemId)")
    g.add_argument("--region", help="AWS region (default: the AWS configuration's)")
    g.add_argument("--endpoint-url", help="a local AWS endpoint such as moto (sets AWS_ENDPOINT_URL)")
    return parent


def target(args: argparse.Namespace) -> ops.Target:
    return ops.resolve_target(
        args.stack,
        args.region,
        queue_url=args.queue_url,
        dlq_url=args.dlq_url,
        table=args.table,
        function=args.function,
        bucket=args.bucket,
        system_id=args.system_id or os.environ.get("TRAEDE_SYSTEM_ID"),
    )
