"""An in-memory ledger store for the unit tier and the simulation: the real `ExportLedger` on a dict.

It evaluates the very condition and update expressions that `protocol.TRANSITIONS` sends to
DynamoDB (the subset the protocol uses: AND, OR, NOT, parentheses, comparisons, IN,
attribute_exists, attribute_not_exists, begins_with; SET and REMOVE), with DynamoDB's rules: a
comparison with a missing attribute, or between a string and a number, is false, but for `<>`,
which is true. The same
simulation runs on DynamoDB Local, which checks this evaluator against AWS's own engine.

`fault` lets a test decide, call by call, what the store does: answer, fail before writing, or
write and lose the answer (botocore's retries included), or write twice (botocore resending a
request whose first answer was lost).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from enum import Enum
from typing import Any

from botocore.exceptions import ClientError, ReadTimeoutError

from traede_export.errors import PartialWrite
from traede_export.ledger_store import Item, Update


class Fault(Enum):
    NONE = "none"
    FAIL = "fail"  # an error before anything is written (e.g. a throttle past botocore's retries)
    LOST = "lost"  # written, but the answer never arrives
    RESENT = "resent"  # written, answer lost, and botocore sends the same request again


FaultHook = Callable[[str, Sequence[Update]], Fault]  # (operation, its updates) -> what happens


def _no_fault(operation: str, updates: Sequence[Update]) -> Fault:
    return Fault.NONE


def failure(operation: str) -> ClientError:
    error: Any = {"Error": {"Code": "InternalServerError", "Message": "injected"}}
    return ClientError(error, operation)


def lost_answer() -> ReadTimeoutError:
    return ReadTimeoutError(endpoint_url="memory://ledger")


class MemoryStore:
    def __init__(self, fault: FaultHook = _no_fault) -> None:
        self.items: dict[str, Item] = {}
        self.fault = fault
        self.calls: list[tuple[str, int]] = []  # (operation, items): what DynamoDB would have been asked
        self.writes: list[list[Update]] = []  # each write call's updates, answered or not
        self._lock = threading.Lock()

    def update(self, update: Update) -> bool:
        return self.update_many([update], operation="UpdateItem")[0]

    def update_many(self, updates: Sequence[Update], operation: str = "TransactWriteItems") -> list[bool]:
        fault = self.fault(operation, updates)
        self.calls.append((operation, len(updates)))
        self.writes.append(list(updates))
        if fault is Fault.FAIL:
            if len(updates) > 1:
                raise PartialWrite([None] * len(updates), failure(operation))
            raise failure(operation)
        with self._lock:
            answers = [self._apply(u) for u in updates]
            if fault is Fault.RESENT:
                answers = [self._apply(u) for u in updates]
        if fault is Fault.LOST:
            raise lost_answer()
        return answers

    def get_many(self, keys: Sequence[str]) -> dict[str, Item]:
        fault = self.fault("BatchGetItem", [])
        self.calls.append(("BatchGetItem", len(keys)))
        if fault is not Fault.NONE:
            raise lost_answer() if fault is Fault.LOST else failure("BatchGetItem")
        with self._lock:
            return {k: _copy(self.items[k]) for k in keys if k in self.items}

    def get(self, key: str) -> Item | None:
        return self.get_many([key]).get(key)

    def scan(self, prefix: str) -> Iterator[Item]:
        with self._lock:
            found = [_copy(item) for key, item in sorted(self.items.items()) if key.startswith(prefix)]
        yield from found

    def _apply(self, update: Update) -> bool:
        item = self.items.get(update.key) or {"pk": {"S": update.key}}
        exists = update.key in self.items
        if update.condition and not Condition(update.condition, update.values).holds(item if exists else {}):
            return False
        self.items[update.key] = _updated(item, update)
        return True


def _copy(item: Item) -> Item:
    return {k: dict(v) for k, v in item.items()}


_ASSIGN = re.compile(r"^\s*(\w+)\s*=\s*(:\w+)\s*$")


def _updated(item: Item, update: Update) -> Item:
    result = _copy(item)
    for clause, body in re.findall(r"(SET|REMOVE)\s+(.*?)(?=\s+(?:SET|REMOVE)\s|$)", update.expression):
        for part in body.split(","):
            if clause == "REMOVE":
                result.pop(part.strip(), None)
                continue
            match = _ASSIGN.match(part)
            if not match:
                raise ValueError(f"unsupported update expression: {update.expression!r}")
            result[match.group(1)] = dict(update.values[match.group(2)])
    return result


# ------------------------------------------------------------------------ condition expressions

_TOKEN = re.compile(r"\s*(<>|<=|>=|=|<|>|\(|\)|,|:\w+|\w+)")


class Condition:
    """A parsed DynamoDB condition expression, evaluated against one item."""

    def __init__(self, text: str, values: dict[str, dict[str, Any]]) -> None:
        self._tokens = _tokens(text)
        self._values = values
        self._text = text

    def holds(self, item: Item) -> bool:
        self._item = item
        self._at = 0
        result = self._or()
        if self._at != len(self._tokens):
            raise ValueError(f"unexpected {self._tokens[self._at]!r} in {self._text!r}")
        return result

    def _peek(self) -> str | None:
        return self._tokens[self._at] if self._at < len(self._tokens) else None

    def _take(self, expected: str | None = None) -> str:
        token = self._peek()
        if token is None or (expected is not None and token.upper() != expected):
            raise ValueError(f"expected {expected or 'more'} at {self._at} in {self._text!r}")
        self._at += 1
        return token

    def _or(self) -> bool:
        result = self._and()
        while (self._peek() or "").upper() == "OR":
            self._take()
            right = self._and()
            result = result or right
        return result

    def _and(self) -> bool:
        result = self._not()
        while (self._peek() or "").upper() == "AND":
            self._take()
            right = self._not()
            result = result and right
        return result

    def _not(self) -> bool:
        if (self._peek() or "").upper() == "NOT":
            self._take()
            return not self._not()
        return self._primary()

    def _primary(self) -> bool:
        token = self._peek()
        if token == "(":
            self._take()
            result = self._or()
            self._take(")")
            return result
        if token in ("attribute_exists", "attribute_not_exists", "begins_with"):
            self._take()
            self._take("(")
            name = self._take()
            if token == "begins_with":
                self._take(",")
                prefix = self._operand()
                self._take(")")
                value = self._item.get(name)
                return value is not None and prefix is not None and "S" in value and value["S"].startswith(prefix)
            self._take(")")
            return (name in self._item) == (token == "attribute_exists")
        left = self._operand()
        op = self._take()
        if op.upper() == "IN":
            self._take("(")
            options = [self._operand()]
            while self._peek() == ",":
                self._take()
                options.append(self._operand())
            self._take(")")
            return any(_compare(left, "=", o) for o in options)
        return _compare(left, op, self._operand())

    def _operand(self) -> Any:
        token = self._take()
        typed = self._values[token] if token.startswith(":") else self._item.get(token)
        if typed is None:
            return None
        if "N" in typed:
            return Decimal(typed["N"])
        if "S" in typed:
            return typed["S"]
        if "BOOL" in typed:
            return typed["BOOL"]
        raise ValueError(f"unsupported type in {typed!r}")


def _tokens(text: str) -> list[str]:
    tokens, at = [], 0
    while at < len(text.rstrip()):
        match = _TOKEN.match(text, at)
        if not match:
            raise ValueError(f"cannot read {text[at:]!r}")
        tokens.append(match.group(1))
        at = match.end()
    return tokens


def _compare(left: Any, op: str, right: Any) -> bool:
    """DynamoDB's comparison: false when either side is missing or the types differ, except `<>`,
    which is then true (measured on DynamoDB Local)."""
    if left is None or right is None or type(left) is not type(right):
        return op == "<>"
    if isinstance(left, str):  # DynamoDB compares strings by their UTF-8 bytes
        left, right = left.encode("utf-8"), right.encode("utf-8")
    if op == "=":
        return bool(left == right)
    if op == "<>":
        return bool(left != right)
    if isinstance(left, bool):
        return False
    return bool({"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op])
