"""The order mapping: a JSONata expression that turns a Traede order into the ERP's request body.

The mapping reads the order as its input and the bindings `$system_id`, `$idempotency_key` and
`$reexport_since` (JSON null unless the run is a re-export, as in the JavaScript reference engine).
Its result must be a JSON object or array. Mappings are files in the bundled `mappings/` folder
next to this module (packaged into the layer by `sam build`); an absolute path is used as it is
(local runs, tests, the preview). `Expression`, the engine underneath, also evaluates the
forwarder's TARGET_REFERENCE on the ERP's answer (target.py).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traede_export.errors import MappingError

MAPPINGS_DIR = Path(__file__).resolve().parent / "mappings"
SAMPLE_ORDER = MAPPINGS_DIR / "sample-order.json"  # what the cold start runs a mapping on
SUFFIX = ".jsonata"


@dataclass(frozen=True)
class Bindings:
    system_id: str
    idempotency_key: str
    reexport_since: str | None = None

    def as_jsonata(self) -> dict[str, Any]:
        """The bindings as jsonata-python takes them: None as JSON null, as the reference engine binds it.

        jsonata-python reads a Python None as undefined, which drops the field from the result; the
        JavaScript engine (the JSONata Exerciser, where users try their mappings) binds null.
        """
        from jsonata import Utils

        values = {
            "system_id": self.system_id,
            "idempotency_key": self.idempotency_key,
            "reexport_since": self.reexport_since,
        }
        return {name: Utils.NULL_VALUE if value is None else value for name, value in values.items()}


def resolve(name: str) -> Path:
    """A bare file name is looked up in the bundled folder; an absolute path is used as is."""
    path = Path(name)
    if path.is_absolute():
        return path
    if path.name != name or name in (".", ".."):
        raise MappingError(
            f"mapping {name!r}: give a file name in the bundled mappings folder ({MAPPINGS_DIR}) or an absolute path"
        )
    return MAPPINGS_DIR / name


def bundled() -> list[Path]:
    """Every mapping shipped in the bundle, sorted."""
    return sorted(MAPPINGS_DIR.glob(f"*{SUFFIX}"))


class Expression:
    """A compiled JSONata expression. Safe to evaluate from several threads at once.

    `label` names it in every error ("mapping /path/x.jsonata", "TARGET_REFERENCE").
    """

    def __init__(self, source: str, label: str) -> None:
        self.source = source
        self.label = label
        self._local = threading.local()
        self._local.expression = self._compile()  # a syntax error surfaces here, at load time

    def _compile(self) -> Any:
        # Imported here: a deployment without an expression never pays for JSONata.
        from jsonata import JException, Jsonata

        try:
            return Jsonata(self.source)
        except JException as exc:
            raise MappingError(f"{self.label} does not compile: {_describe(exc)}") from None

    def _expression(self) -> Any:
        """One compiled expression per thread.

        jsonata-python keeps per-evaluation state (the input, the environment, the timestamp
        behind `$now()`) on a thread-local "current" instance; pointing it at this thread's own
        expression before each evaluation keeps threads apart and `$now()` fresh.
        """
        from jsonata import Jsonata

        expression = getattr(self._local, "expression", None)
        if expression is None:
            expression = self._local.expression = self._compile()
        Jsonata.CURRENT.jsonata = expression
        return expression

    def evaluate(self, data: Any, bindings: dict[str, Any] | None = None) -> Any:
        """The expression's result on `data`; MappingError says why there is none."""
        try:
            return self._expression().evaluate(data, bindings)
        except RecursionError:
            raise MappingError(f"{self.label} recursed too deeply") from None
        except Exception as exc:  # JException and errors from inside the engine alike
            raise MappingError(f"{self.label} failed: {_describe(exc)}", code=getattr(exc, "error", None)) from None


class OrderMapping(Expression):
    """A compiled mapping. Safe to apply from several threads at once."""

    def __init__(self, source: str, name: str) -> None:
        self.name = name
        super().__init__(source, f"mapping {name}")

    @classmethod
    def load(cls, name: str) -> OrderMapping:
        path = resolve(name)
        try:
            source = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise MappingError(f"mapping {path}: cannot read it ({exc.strerror or type(exc).__name__})") from None
        return cls(source, str(path))

    def apply(self, order: Any, bindings: Bindings) -> Any:
        """The request body for one order (a dict or list), or MappingError saying why not."""
        result = self.evaluate(order, bindings.as_jsonata())
        if not isinstance(result, dict | list):
            raise MappingError(f"mapping {self.name} produced {_kind(result)}, not a JSON object or array")
        return result

    def render(self, order: Any, bindings: Bindings) -> bytes:
        """`apply`, serialised as strict JSON."""
        body = self.apply(order, bindings)
        try:
            return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise MappingError(f"mapping {self.name} produced a body that is not JSON: {exc}") from None

    def check(self, sample: Path = SAMPLE_ORDER) -> None:
        """Run once on the bundled sample order: an unknown function only fails when it runs."""
        order = json.loads(sample.read_text(encoding="utf-8"))
        bindings = Bindings("sample-system", f"traede:sample-system:{order.get('id')}:sample", None)
        try:
            self.render(order, bindings)
        except MappingError as exc:
            raise MappingError(f"{exc} (on the sample order {sample.name})") from None


def load_checked(name: str | None) -> OrderMapping | None:
    """The cold-start load: compile and run on the sample order; None means Traede's order unchanged."""
    if not name:
        return None
    mapping = OrderMapping.load(name)
    mapping.check()
    return mapping


def _describe(exc: Exception) -> str:
    code = getattr(exc, "error", None)
    location = getattr(exc, "location", None)
    where = f" at position {location}" if isinstance(location, int) and location >= 0 else ""
    token = getattr(exc, "current", None)
    where += f" ({token!r})" if isinstance(token, str) and token and token not in str(exc) else ""
    prefix = f"{code}{where}: " if code else f"{type(exc).__name__}: "
    return prefix + (str(exc) or "no message")


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (undefined or null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"
