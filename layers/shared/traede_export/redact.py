"""The one place that masks the credentials this process holds, in any text that leaves it.

Secrets are registered where they are read (`credentials`: Traede's token, `Bearer <token>` and
app key, each target header value; `config`: a password found in a URL variable). `mask`
replaces each, in the forms it travels in (as sent, URL-encoded, JSON-escaped), with `***`.
Every text that leaves the process passes through it: the functions' log lines (`json_dumps`,
their Powertools serializer, and `MaskingFilter` on the root logger's handlers for other
libraries' logs), the errors made from Traede's or the ERP's answers (`TraedeError`,
`DeliveryResult.reason`, `ConfigurationError`, hence the poller's `PollFailed`), the SQS
attributes `QueueWriter` sends (a parked order's `failure_reason`), and the operator CLI's
output (`masked_streams`). Metrics carry no such text: their one dimension is the stack's name.

A value shorter than MIN_CHARS is not masked: it would match inside ordinary text (ids, status
codes, timestamps) and garble every log line, while a credential that short is guessable anyway.
Empty values never are.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import re
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any, TextIO
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_CHARS = 6

_lock = threading.Lock()
_values: set[str] = set()  # as registered
_forms: set[str] = set()  # every form they are matched in
_pattern: re.Pattern[str] | None = None
_longest = 0  # the longest form's length: what a cut can leave of one


def register(*values: str | None) -> None:
    """Mask these values from now on, for the life of the process (an old secret stays masked)."""
    fresh = [v for v in values if v and len(v) >= MIN_CHARS and v not in _values]
    if not fresh:
        return
    global _pattern, _longest
    with _lock:
        for value in fresh:
            _values.add(value)
            for part in (value, *_carried(value)):
                if len(part) >= MIN_CHARS:
                    _forms.update(f for f in _forms_of(part) if len(f) >= MIN_CHARS)
        _longest = max(map(len, _forms), default=0)
        _pattern = re.compile(_trie(_forms))


_AUTH_PARAM = re.compile(r'([!#$%&\'*+.^_`|~0-9A-Za-z-]+)=("(?:[^"\\]|\\.)*"|[^\s,]*)')


def _carried(value: str) -> list[str]:
    """What an authorization value carries that an answer may quote on its own: the credential after
    its scheme ("Bearer <token>"), a Basic value's decoded `user:password` and password, and the
    parameters of a scheme such as `Token token="..."`."""
    scheme, _, credential = value.partition(" ")
    credential = credential.strip()
    if not credential:
        return []
    carried = [credential]
    if scheme.lower() == "basic":
        try:
            raw = base64.b64decode(credential, validate=True)
        except binascii.Error:
            return carried
        for encoding in ("utf-8", "latin-1"):  # RFC 7617: UTF-8 if the server asks, else often Latin-1
            with contextlib.suppress(UnicodeDecodeError):
                decoded = raw.decode(encoding)
                carried += [decoded, decoded.partition(":")[2]]
    else:
        params = (param for _, param in _AUTH_PARAM.findall(credential))
        carried += [p[1:-1].replace('\\"', '"') if p.startswith('"') else p for p in params]
    return carried


def _forms_of(value: str) -> set[str]:
    escaped = json.dumps(value)[1:-1]
    return {
        value,
        quote(value, safe=""),
        quote_plus(value),
        escaped,
        json.dumps(value, ensure_ascii=False)[1:-1],
        escaped.replace("/", "\\/"),  # PHP's json_encode escapes "/" by default
    }


def _trie(words: Iterable[str]) -> str:
    """One regex matching any of `words`, as a trie: its cost does not grow with their number, and
    at each point the longest word wins (a greedy optional tail), so `Bearer <token>` is masked whole."""
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}  # a word ends here

    def pattern(node: dict[str, Any]) -> str:
        branches = []
        for char, child in sorted(node.items()):
            if not char:
                continue
            chain = re.escape(char)
            while len(child) == 1 and "" not in child:  # a run without branches: no group, no recursion
                char, child = next(iter(child.items()))
                chain += re.escape(char)
            branches.append(chain + pattern(child))
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return pattern(root)


def mask(text: str) -> str:
    """`text` with every registered secret, in any of its forms, replaced by `***`."""
    pattern = _pattern
    return text if pattern is None else pattern.sub(MASK, text)


def excerpt(text: str, limit: int = 200) -> str:
    """The start of an answer's body for a message, masked.

    Only a window is masked (an answer may be megabytes); a secret the window's end cuts through
    is not matched, so when there was a cut its last characters that may hold one go too."""
    window = limit * 20 + _longest
    if len(text) <= window:
        return mask(text)[:limit]
    masked = mask(text[:window])
    return masked[: len(masked) - max(0, _longest - 1)][:limit]


def json_dumps(log: dict[str, Any]) -> str:
    """The functions' log serializer: Powertools' own settings, then `mask` over the whole line
    (the message, every key, a formatted exception)."""
    return mask(json.dumps(log, default=str, separators=(",", ":"), ensure_ascii=False))


# Attributes every LogRecord has; any other attribute is an `extra` the record carries.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class MaskingFilter(logging.Filter):
    """Masks a record's message, extras and exception before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _pattern is None:
            return True
        with contextlib.suppress(Exception):  # a record whose arguments do not format is left to logging
            record.msg, record.args = mask(record.getMessage()), None
        for name, value in list(vars(record).items()):
            if name not in _RECORD_FIELDS and isinstance(value, str):
                setattr(record, name, mask(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = mask(logging.Formatter().formatException(record.exc_info))
        return True


_FILTER = MaskingFilter()


def install_log_filter() -> None:
    """Mask what other libraries (botocore, urllib3) log through the root logger's handlers, as in
    Lambda's runtime. Idempotent: each cold start calls it."""
    for handler in logging.getLogger().handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)


class _MaskingStream:
    """A text stream that masks what is written to it; everything else is the stream's own."""

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        return self._inner.write(mask(text))

    def writelines(self, lines: Iterable[str]) -> None:
        self._inner.writelines(mask(line) for line in lines)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@contextlib.contextmanager
def masked_streams() -> Iterator[None]:
    """stdout and stderr masked for the duration (the CLI's output, whatever prints it)."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _MaskingStream(saved[0]), _MaskingStream(saved[1])
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
