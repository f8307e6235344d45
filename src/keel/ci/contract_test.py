"""`keel contract-test`: does a model version answer requests the way its inference contract says?

Real rows (the version's holdout, as requests would carry them) are sent to the model, either
loaded here through the serving code path (request decoding, the packaged feature code, the
same output encoding as `keel serve`) or to a running server's Open Inference Protocol endpoint
for that exact version. Each check is a JUnit testcase:

- the stored contract can be read;
- the release gate `inference_contract` passes (the same evidence `keel promote` gathers);
- every row gets one answer; outputs have the contract's names and types; values are in range
  (finite numbers, probabilities within [0, 1]);
- a request missing a required input, and one with a value of the wrong type, are refused
  with an error that names the field.

`check_answers` holds the checks themselves, so the smoke test runs them on the model it
trained without a registry.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from keel.errors import ConfigError, NotFound, StoreError
from keel.models.signature import InferenceContract, LogicalType
from keel.reports.junit import JUnitCase, JUnitSuite

if TYPE_CHECKING:
    from keel.domain.model import ModelVersion
    from keel.serving.slots import ServedVersion
    from keel.workspace import Workspace

__all__ = [
    "Answer",
    "ContractTestResult",
    "Send",
    "check_answers",
    "contract_test",
    "local_sender",
    "request_records",
]

CLASSNAME: Final = "keel.contract_test"
#: A value no numeric, boolean or timestamp input accepts.
_NOT_A_NUMBER: Final = "not-a-number"


@dataclass(frozen=True, slots=True)
class Answer:
    """What the model said to one request: outputs by name, or a refusal naming fields."""

    status: int
    outputs: Mapping[str, Sequence[Any]] | None = None
    message: str = ""
    fields: tuple[str, ...] = ()


#: Sends JSON-ready records as one request and returns the answer.
Send = Callable[[list[dict[str, Any]]], Answer]


@dataclass(frozen=True)
class ContractTestResult:
    ref: str
    target: str  # "local" or the server's URL
    rows: int
    suite: JUnitSuite

    @property
    def ok(self) -> bool:
        return self.suite.ok

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "model": self.ref,
            "target": self.target,
            "rows": self.rows,
            "checks": [
                {
                    "name": case.name,
                    "status": case.status,
                    "message": case.failure or case.skipped or "",
                    "details": case.details,
                }
                for case in self.suite.cases
            ],
        }


def request_records(frame: Any, contract: InferenceContract) -> list[dict[str, Any]]:
    """The contract's inputs of each row of `frame` (pandas), as a JSON client sends them:
    nulls as None, timestamps as ISO-8601 text, dates as YYYY-MM-DD, numbers as Python
    numbers."""
    names = [name for name in contract.input_names if name in frame.columns]
    dates = {f.name for f in contract.inputs if f.type == "date"}
    return [
        {
            name: _json_value(value, date_only=name in dates)
            for name, value in zip(names, row, strict=True)
        }
        for row in frame[names].itertuples(index=False, name=None)
    ]


def _json_value(value: Any, *, date_only: bool = False) -> Any:
    if value is None:
        return None
    if hasattr(value, "isoformat"):
        try:
            if value != value:  # NaT, the only time unequal to itself
                return None
        except TypeError:
            pass
        if date_only and hasattr(value, "date"):
            value = value.date()
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


# -- senders -----------------------------------------------------------------------------------


def local_sender(served: ServedVersion, *, max_rows: int) -> Send:
    """Requests decoded and answered as `keel serve` does, in this process."""
    from keel.serving.codec import BadRequest, decode_records

    def send(records: list[dict[str, Any]]) -> Answer:
        try:
            batch = decode_records(
                {"records": records}, served.contract, max_rows=max(max_rows, len(records))
            )
        except BadRequest as exc:
            return Answer(exc.status, None, exc.message, tuple(p.field for p in exc.problems))
        return Answer(200, served.predict(batch))

    return send


def http_sender(url: str, version: ModelVersion, contract: InferenceContract) -> Send:
    """Requests to a server's OIP endpoint for exactly this version."""
    from keel.serving.codec import oip_datatype

    endpoint = f"{url.rstrip('/')}/v2/models/{version.model}/versions/{version.version}/infer"
    types = {f.name: f.type for f in contract.inputs}

    def send(records: list[dict[str, Any]]) -> Answer:
        names = list(dict.fromkeys(name for record in records for name in record))
        tensors = [
            {
                "name": name,
                "shape": [len(records)],
                "datatype": oip_datatype(types[name]) if name in types else "BYTES",
                "data": [record.get(name) for record in records],
            }
            for name in names
        ]
        status, document = _post(endpoint, {"inputs": tensors})
        if status != 200:
            problems = document.get("problems") or []
            fields = tuple(str(p.get("field", "")).split(".")[0] for p in problems)
            return Answer(status, None, str(document.get("error", "")), fields)
        outputs = {
            str(tensor.get("name")): list(tensor.get("data") or [])
            for tensor in document.get("outputs") or []
        }
        return Answer(status, outputs)

    return send


def _post(url: str, document: Any, timeout: float = 60.0) -> tuple[int, dict[str, Any]]:
    body = json.dumps(document, allow_nan=False).encode()
    request = urllib.request.Request(  # noqa: S310 - the URL the user asked to test
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        raise _unreachable(url, exc) from None
    try:
        answer = json.loads(raw) if raw else {}
    except ValueError:
        answer = {"error": raw[:200].decode("utf-8", errors="replace")}
    return status, answer if isinstance(answer, dict) else {"error": "not a JSON object"}


# -- the checks ------------------------------------------------------------------------------------


def check_answers(
    contract: InferenceContract, send: Send, records: list[dict[str, Any]], *, prefix: str = ""
) -> list[JUnitCase]:
    """Send `records` (and two bad requests built from them) and check every answer."""
    cases: list[JUnitCase] = []

    def case(name: str, started: float, problems: Sequence[str], details: str = "") -> None:
        failure = None if not problems else problems[0]
        text = "\n".join(problems) if problems else ""
        cases.append(
            JUnitCase(
                f"{prefix}{name}",
                CLASSNAME,
                time.perf_counter() - started,
                failure=failure,
                details=f"{text}\n{details}".strip(),
            )
        )

    started = time.perf_counter()
    answer = send(records)
    if answer.outputs is None:
        case(
            f"{len(records)} real rows are answered",
            started,
            [f"refused with status {answer.status}: {answer.message}"],
        )
        outputs: Mapping[str, Sequence[Any]] = {}
    else:
        outputs = answer.outputs
        counts = {name: len(values) for name, values in outputs.items()}
        wrong = [
            f"output '{name}' has {count} values for {len(records)} rows"
            for name, count in counts.items()
            if count != len(records)
        ]
        case(f"{len(records)} real rows are answered, one answer per row", started, wrong)
        started = time.perf_counter()
        case(
            "outputs have the contract's names and types",
            started,
            _type_problems(contract, outputs),
        )
        started = time.perf_counter()
        case("output values are in range", started, _range_problems(outputs))
    if records:
        cases.extend(_refusals(contract, send, records[0], prefix))
    return cases


def _type_problems(contract: InferenceContract, outputs: Mapping[str, Sequence[Any]]) -> list[str]:
    problems = [
        f"output '{f.name}' is missing from the response (the contract lists it)"
        for f in contract.outputs
        if f.name not in outputs
    ]
    declared = {f.name: f.type for f in contract.outputs}
    problems += [
        f"output '{name}' is not in the contract (it lists {', '.join(declared)})"
        for name in outputs
        if name not in declared
    ]
    for name, logical in declared.items():
        for row, value in enumerate(outputs.get(name, ())):
            if value is not None and not _is(logical, value):
                problems.append(
                    f"output '{name}', row {row}: expected {logical}, got "
                    f"{type(value).__name__} {value!r}"[:200]
                )
                break
    return problems


def _range_problems(outputs: Mapping[str, Sequence[Any]]) -> list[str]:
    problems = []
    for name, values in outputs.items():
        for row, value in enumerate(values):
            if isinstance(value, float) and not math.isfinite(value):
                problems.append(f"output '{name}', row {row}: {value} is not a finite number")
                break
            if name == "probability" and isinstance(value, int | float) and not 0 <= value <= 1:
                problems.append(f"output 'probability', row {row}: {value} is outside [0, 1]")
                break
    return problems


def _is(logical: LogicalType, value: Any) -> bool:
    if logical == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if logical == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if logical == "float":
        return isinstance(value, int | float)
    return isinstance(value, str)  # strings, and timestamps as ISO-8601 text


def _refusals(
    contract: InferenceContract, send: Send, record: dict[str, Any], prefix: str
) -> list[JUnitCase]:
    cases = []
    if contract.inputs:
        missing = contract.inputs[0].name
        started = time.perf_counter()
        request = {k: v for k, v in record.items() if k != missing}
        problem = _refusal_problem(send([request]), missing)
        cases.append(
            JUnitCase(
                f"{prefix}refuses a request without input '{missing}', naming it",
                CLASSNAME,
                time.perf_counter() - started,
                failure=problem,
            )
        )
    typed = next((f for f in contract.inputs if f.type != "string"), None)
    if typed is None and contract.inputs:
        typed = contract.inputs[0]
    if typed is not None:
        wrong: Any = 12345 if typed.type == "string" else _NOT_A_NUMBER
        kind = "an integer" if isinstance(wrong, int) else "a string"
        started = time.perf_counter()
        problem = _refusal_problem(send([{**record, typed.name: wrong}]), typed.name)
        cases.append(
            JUnitCase(
                f"{prefix}refuses {kind} in {typed.type} input '{typed.name}', naming it",
                CLASSNAME,
                time.perf_counter() - started,
                failure=problem,
            )
        )
    return cases


def _refusal_problem(answer: Answer, field: str) -> str | None:
    if answer.outputs is not None or answer.status < 400:
        return f"the bad request was answered (status {answer.status}) instead of refused"
    if not 400 <= answer.status < 500:
        return f"refused with status {answer.status} (a server error), expected a 4xx"
    if field not in answer.fields and field not in answer.message:
        return f"refused ({answer.message!r}) without naming the field '{field}'"
    return None


# -- the command -----------------------------------------------------------------------------------


def contract_test(
    project: Workspace, ref: str, *, url: str | None = None, rows: int = 100
) -> ContractTestResult:
    """Test `ref`'s inference contract against the model loaded here, or the server at `url`."""
    from keel.models.evaluation import load_evaluation_data
    from keel.release.evidence import gather_evidence
    from keel.serving.slots import load_version
    from keel.spec import InferenceContractGate

    started_at = datetime.now(UTC)
    version = project.metadata.models.resolve(ref)
    target = "local" if url is None else url
    cases: list[JUnitCase] = []
    started = time.perf_counter()
    if not version.inference_contract:
        raise NotFound(
            f"{version.ref} has no stored inference contract to test against",
            hint="versions registered by `keel train` have one; retrain to record it",
        )
    try:
        contract = InferenceContract.from_dict(version.inference_contract)
    except (ConfigError, KeyError, TypeError) as exc:
        cases.append(
            JUnitCase(
                "the stored inference contract can be read",
                CLASSNAME,
                time.perf_counter() - started,
                failure=f"{version.ref}: {exc}",
            )
        )
        return ContractTestResult(version.ref, target, 0, _suite(version, cases, started_at))
    cases.append(
        JUnitCase(
            "the stored inference contract can be read",
            CLASSNAME,
            time.perf_counter() - started,
            output=f"{len(contract.inputs)} inputs, outputs "
            + ", ".join(f"{f.name} ({f.type})" for f in contract.outputs),
        )
    )
    data = load_evaluation_data(project, version, None)
    records = request_records(data.raw.head(rows), contract)
    if url is None:
        started = time.perf_counter()
        gate = InferenceContractGate(type="inference_contract", samples=rows)
        evidence = gather_evidence(project, version, "contract-test", None, [gate])
        failures = list(evidence.inference.failures) if evidence.inference else ["no evidence"]
        cases.append(
            JUnitCase(
                "release gate inference_contract passes",
                CLASSNAME,
                time.perf_counter() - started,
                failure=failures[0] if failures else None,
                details="\n".join(failures),
            )
        )
        served = load_version(project, version)
        send = local_sender(served, max_rows=project.spec.serving.max_rows)
    else:
        _require_served(url, version)
        send = http_sender(url, version, contract)
    cases.extend(check_answers(contract, send, records))
    return ContractTestResult(version.ref, target, len(records), _suite(version, cases, started_at))


def _require_served(url: str, version: ModelVersion) -> None:
    from urllib.parse import quote

    endpoint = f"{url.rstrip('/')}/v2/models/{quote(version.model)}/versions/{version.version}"
    try:
        with urllib.request.urlopen(endpoint, timeout=30) as response:  # noqa: S310
            response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode("utf-8", errors="replace")
        raise NotFound(
            f"the server at {url} does not serve {version.ref} (HTTP {exc.code}: {detail})",
            hint=f"a server serves the versions holding production and canary; "
            f"test one of those, or promote {version.ref} first",
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        raise _unreachable(url, exc) from None


def _unreachable(url: str, exc: Exception) -> StoreError:
    reason = getattr(exc, "reason", exc)
    return StoreError(
        f"cannot reach the model server at {url}: {reason}",
        hint="start it with `keel serve`, or check --url",
    )


def _suite(version: ModelVersion, cases: list[JUnitCase], at: datetime) -> JUnitSuite:
    return JUnitSuite(
        f"keel contract-test {version.ref}",
        cases,
        timestamp=at,
        properties={"model": version.model, "version": str(version.version)},
    )
