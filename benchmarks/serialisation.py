"""Serialisation on the serving hot path: keel's hand-written conversions against pydantic's
`TypeAdapter` and cattrs, in the same run.

    python benchmarks/serialisation.py [--repeat 7] [--number 20000] [--json]

What a prediction request converts, and what a stored document costs to read back:

  (a) spool record out   a `PredictionBatch` (one row, the flights contract's 23 inputs and 2
                         outputs) to the JSON-ready document the prediction spool writes
                         (`keel.predlog.spool.encode_batch` builds it by hand);
  (b) spool record in    that document back to a `PredictionBatch` (`decode_batch` +
                         the constructor, as the log's writer replays the spool);
  (c) logged row out     a `LoggedPrediction` to its document (`LoggedPrediction.to_dict`,
                         what `keel explain` and `/api/v1/predictions/{id}` return);
  (d) problem out        a request `Problem` to its document (every 4xx answer);
  (e) gate result in     a stored `GateResult` document read back (`GateResult.from_dict`):
                         a stored document, not the hot path, shown for the read side.

For each, the hand-written code, `TypeAdapter(cls).dump_python(obj, mode="json")` /
`validate_python(document)`, `keel.serial.dump`/`load` (the same TypeAdapter with keel's
conventions: datetimes by `isoformat`, numbers as they are, digests as text), and a cattrs
`Converter` with the hooks the document needs (datetimes as ISO strings) take turns, --number
calls each per round, --repeat rounds; figures are the median time of one call and its ratio
to the hand-written code. cattrs is measured when it is installed (`pip install cattrs`);
keel does not depend on it.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine_summary
from keel.domain.prediction import LoggedPrediction
from keel.domain.release import GateResult
from keel.predlog.log import PredictionBatch
from keel.serial import dump, load
from keel.serving.codec import Problem

try:
    import cattrs
except ImportError:  # measured only where installed
    cattrs = None  # type: ignore[assignment]

AT = datetime(2013, 7, 1, 12, 30, tzinfo=UTC)
INPUTS: dict[str, Any] = {
    **{f"num_{i}": 1.5 * i for i in range(15)},
    **{f"cat_{i}": f"value-{i}" for i in range(6)},
    "sched_dep_time": "2013-07-01T12:30:00",
    "day": "2013-07-01",
}
OUTPUTS: dict[str, Any] = {"prediction": 12.5, "probability": 0.82}


def _hand_batch_out(batch: PredictionBatch) -> dict[str, Any]:
    # The document keel.predlog.spool.encode_batch builds before orjson writes it.
    return {
        "ids": list(batch.ids),
        "at": batch.at.isoformat(),
        "model": batch.model,
        "version": batch.version,
        "slot": batch.slot,
        "inputs": {name: list(values) for name, values in batch.inputs.items()},
        "outputs": {name: list(values) for name, values in batch.outputs.items()},
        "latency_ms": batch.latency_ms,
        "client_id": batch.client_id,
        "shadow_of": None if batch.shadow_of is None else list(batch.shadow_of),
    }


def _hand_batch_in(document: dict[str, Any]) -> PredictionBatch:
    # decode_batch mutates its document (the `at` field): give it a copy, as orjson.loads would.
    return PredictionBatch(**_decode_from_dict(dict(document)))


def _decode_from_dict(document: dict[str, Any]) -> dict[str, Any]:
    document["at"] = datetime.fromisoformat(document["at"])
    return document


def _cattrs_converter() -> Any:
    converter = cattrs.Converter()
    converter.register_unstructure_hook(datetime, datetime.isoformat)
    converter.register_structure_hook(datetime, lambda value, _: datetime.fromisoformat(value))
    return converter


def _time(functions: dict[str, Callable[[], object]], number: int, repeat: int) -> dict[str, float]:
    """Median seconds of one call of each function. The functions take turns within each
    round, so a busy machine slows them alike instead of whichever ran during the busy part."""
    for function in functions.values():
        function()  # warm: adapters and converters build their code on first use
    rounds: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeat):
        for name, function in functions.items():
            start = time.perf_counter()
            for _ in range(number):
                function()
            rounds[name].append((time.perf_counter() - start) / number)
    return {name: statistics.median(times) for name, times in rounds.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=20000)
    parser.add_argument("--json", action="store_true", help="print every figure as JSON")
    args = parser.parse_args(argv)

    batch = PredictionBatch(
        ids=["0190f1c2a7b84d0e9c1a2b3c4d5e6f70"],
        at=AT,
        model="flights",
        version=3,
        slot="production",
        inputs={name: [value] for name, value in INPUTS.items()},
        outputs={name: [value] for name, value in OUTPUTS.items()},
        latency_ms=3.2,
    )
    logged = LoggedPrediction(
        id="0190f1c2a7b84d0e9c1a2b3c4d5e6f70",
        at=AT,
        model="flights",
        version=3,
        slot="production",
        inputs=INPUTS,
        outputs=OUTPUTS,
        latency_ms=3.2,
    )
    problem = Problem("inputs.dep_delay", "a number", "got 'late'", record=0)
    gate_document = {
        "gate": "mae below 12",
        "type": "metric",
        "passed": True,
        "reason": "mae 11.9 <= 12.0",
        "evidence": {"metric": "mae", "value": 11.9, "threshold": 12.0},
        "owner": "ana",
    }
    gate_document = GateResult.from_dict(gate_document).to_dict()
    batch_document = _hand_batch_out(batch)

    adapters = {cls: TypeAdapter(cls) for cls in (PredictionBatch, LoggedPrediction, Problem)}
    gate_adapter = TypeAdapter(GateResult)
    converter = _cattrs_converter() if cattrs is not None else None

    cases: list[tuple[str, dict[str, Callable[[], object]]]] = [
        (
            "(a) spool record out",
            {
                "hand-written": lambda: _hand_batch_out(batch),
                "pydantic": lambda: adapters[PredictionBatch].dump_python(batch, mode="json"),
                "keel.serial": lambda: dump(batch),
                "cattrs": lambda: converter.unstructure(batch),
            },
        ),
        (
            "(b) spool record in",
            {
                "hand-written": lambda: _hand_batch_in(batch_document),
                "pydantic": lambda: adapters[PredictionBatch].validate_python(batch_document),
                "keel.serial": lambda: load(PredictionBatch, batch_document),
                "cattrs": lambda: converter.structure(batch_document, PredictionBatch),
            },
        ),
        (
            "(c) logged row out",
            {
                "hand-written": logged.to_dict,
                "pydantic": lambda: adapters[LoggedPrediction].dump_python(logged, mode="json"),
                "keel.serial": lambda: dump(logged),
                "cattrs": lambda: converter.unstructure(logged),
            },
        ),
        (
            "(d) problem out",
            {
                "hand-written": problem.to_dict,
                "pydantic": lambda: adapters[Problem].dump_python(
                    problem, mode="json", exclude_none=True
                ),
                "keel.serial": lambda: dump(problem, exclude_none=True),
                "cattrs": lambda: converter.unstructure(problem),
            },
        ),
        (
            "(e) gate result in",
            {
                "hand-written": lambda: GateResult.from_dict(gate_document),
                "pydantic": lambda: gate_adapter.validate_python(gate_document),
                "keel.serial": lambda: load(GateResult, gate_document),
                "cattrs": lambda: converter.structure(gate_document, GateResult),
            },
        ),
    ]

    results: list[dict[str, Any]] = []
    for name, mechanisms in cases:
        if converter is None:
            del mechanisms["cattrs"]
        timed = _time(mechanisms, args.number, args.repeat)
        results.append({"case": name, "cattrs": None, **timed})

    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    import pydantic

    versions = [f"pydantic {pydantic.VERSION}"]
    if cattrs is not None:
        versions.append(f"cattrs {importlib.metadata.version('cattrs')}")
    print(machine_summary(*versions))
    names = ("hand-written", "pydantic", "keel.serial", "cattrs")
    print(f"{'case':<22}" + "".join(f"{name:>14}" for name in names) + "   ratios to hand-written")
    for row in results:
        hand = row["hand-written"]
        times = "".join(
            f"{'-':>14}" if row[name] is None else f"{row[name] * 1e6:>11.2f} us" for name in names
        )
        ratios = ", ".join(
            f"{name} {row[name] / hand:.2f}" for name in names[1:] if row[name] is not None
        )
        print(f"{row['case']:<22}{times}   {ratios}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
