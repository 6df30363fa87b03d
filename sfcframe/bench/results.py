"""The result file every benchmark writes, and the statistics in it.

One JSON document per benchmark, ``<out>/<name>.json``::

    {
      "schema": "sfcframe.bench/1",
      "benchmark": "cost",                  # or "memory", ...
      "created": "2026-...Z",               # UTC
      "command": "sfcframe bench cost ...", # how it was made
      "machine": {...},                     # sfcframe.bench.machine.describe()
      "parameters": {...},                  # what the run was asked to do
      "method": {...},                      # how it measured, in words and numbers
      "results": {...},                     # benchmark-specific: rows, raw samples, summaries
      "targets": [                          # the issue's targets: reported, never asserted
        {"name": ..., "target": ..., "measured": ..., "met": true|false|null, "note": ...}
      ]
    }

A summary of a set of numbers is :func:`summarize` (median, min, max, p10,
p90, mean, n); a value measured once per round is :func:`across_rounds`
(median of the round values, min–max across rounds, the values).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
import shlex
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

SCHEMA = "sfcframe.bench/1"
TOP_LEVEL = ("schema", "benchmark", "created", "command", "machine", "parameters",
             "method", "results", "targets")
SUMMARY_FIELDS = ("n", "median", "min", "max", "p10", "p90", "mean")
ROUNDS_FIELDS = ("median", "min", "max", "rounds")


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of an already sorted sequence."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = math.ceil(pos)
    if lo == hi:
        return float(sorted_values[lo])
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _round(value: float, digits: int = 1) -> float:
    return round(float(value), digits)


def summarize(values: Iterable[float]) -> dict[str, float]:
    data = sorted(values)
    if not data:
        raise ValueError("summary of no values")
    return {
        "n": len(data),
        "median": _round(percentile(data, 50)),
        "min": _round(data[0]),
        "max": _round(data[-1]),
        "p10": _round(percentile(data, 10)),
        "p90": _round(percentile(data, 90)),
        "mean": _round(sum(data) / len(data)),
    }


def median(values: Iterable[float]) -> float:
    return percentile(sorted(values), 50)


def across_rounds(per_round: Sequence[float]) -> dict[str, Any]:
    """One value per round: their median, and min–max across rounds."""
    if not per_round:
        raise ValueError("no rounds")
    return {
        "median": _round(median(per_round)),
        "min": _round(min(per_round)),
        "max": _round(max(per_round)),
        "rounds": [_round(v) for v in per_round],
    }


def observed_resolution(samples: Iterable[int]) -> int | None:
    """The step between the values a timer reported, in ns.

    Sample values that differ by 1 ns are merged first (the kernel rounds the
    difference of two timestamps), then the most frequent gap between
    neighbouring distinct values is the timer's effective resolution.
    """
    values = sorted(set(int(v) for v in samples))
    merged: list[int] = []
    for v in values:
        if merged and v - merged[-1] <= 1:
            continue
        merged.append(v)
    gaps: dict[int, int] = {}
    for a, b in zip(merged, merged[1:]):
        gaps[b - a] = gaps.get(b - a, 0) + 1
    if not gaps:
        return None
    return max(gaps.items(), key=lambda item: (item[1], -item[0]))[0]


def command_line() -> str:
    """The command that is running, as a user would type it."""
    argv = list(sys.argv)
    prog = Path(argv[0]).name if argv else "sfcframe"
    if prog in ("__main__.py", "-m") or prog.endswith(".py"):
        prog = "python -m sfcframe.bench"
    return " ".join([prog, *map(shlex.quote, argv[1:])])


def document(benchmark: str, parameters: dict, method: dict, results: dict,
             targets: list[dict], machine: dict, command: str | None = None) -> dict:
    return {
        "schema": SCHEMA,
        "benchmark": benchmark,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command or command_line(),
        "machine": machine,
        "parameters": parameters,
        "method": method,
        "results": results,
        "targets": targets,
    }


def target(name: str, goal: str, measured: Any, met: bool | None, note: str = "") -> dict:
    return {"name": name, "target": goal, "measured": measured, "met": met, "note": note}


_NUMBER_LIST = re.compile(r"\[\s*(-?[\d.]+(?:\s*,\s*-?[\d.]+)*)\s*\]")


def dumps(doc: dict) -> str:
    """Indented JSON, with lists of numbers (raw samples) kept on one line."""
    text = json.dumps(doc, indent=2, sort_keys=False)
    return _NUMBER_LIST.sub(lambda m: "[" + re.sub(r"\s+", "", m.group(1)) + "]", text) + "\n"


def write(doc: dict, out_dir: Path, name: str | None = None) -> Path:
    validate(doc)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name or doc['benchmark']}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(dumps(doc))
    tmp.replace(path)
    return path


def load(path: Path) -> dict:
    doc = json.loads(Path(path).read_text())
    validate(doc)
    return doc


class SchemaError(ValueError):
    pass


def _check_summary(where: str, obj: Any, fields: Sequence[str]) -> None:
    if not isinstance(obj, dict):
        raise SchemaError(f"{where}: expected an object, got {type(obj).__name__}")
    missing = [f for f in fields if f not in obj]
    if missing:
        raise SchemaError(f"{where}: missing {', '.join(missing)}")


def validate(doc: dict) -> None:
    """Check the common envelope (and the parts :mod:`cost`/:mod:`memory` promise)."""
    missing = [f for f in TOP_LEVEL if f not in doc]
    if missing:
        raise SchemaError(f"result document: missing {', '.join(missing)}")
    if doc["schema"] != SCHEMA:
        raise SchemaError(f"schema {doc['schema']!r}, expected {SCHEMA!r}")
    for field in ("cpu_model", "cores", "kernel", "distro", "versions"):
        if field not in doc["machine"]:
            raise SchemaError(f"machine: missing {field}")
    for field in ("sfcframe", "bcc", "python"):
        if field not in doc["machine"]["versions"]:
            raise SchemaError(f"machine.versions: missing {field}")
    for i, t in enumerate(doc["targets"]):
        _check_summary(f"targets[{i}]", t, ("name", "target", "measured", "met"))
    checker = _RESULT_CHECKS.get(doc["benchmark"])
    if checker:
        checker(doc["results"])


def _validate_cost(results: dict) -> None:
    _check_summary("results", results, ("rows", "floors"))
    for i, row in enumerate(results["rows"]):
        where = f"results.rows[{i}]"
        _check_summary(where, row, ("id", "encap", "key", "params", "packets", "directions"))
        for direction in ("ingress", "egress"):
            d = row["directions"].get(direction)
            _check_summary(f"{where}.{direction}", d, ("samples_ns", "gross", "net", "counters"))
            rounds = d["samples_ns"]
            if not rounds or not all(isinstance(r, list) and r for r in rounds):
                raise SchemaError(f"{where}.{direction}: samples_ns must be a list of rounds")
            for summary in ("gross", "net"):
                _check_summary(f"{where}.{direction}.{summary}", d[summary],
                               ("per_round_median", "pooled"))
                _check_summary(f"{where}.{direction}.{summary}.per_round_median",
                               d[summary]["per_round_median"], ROUNDS_FIELDS)
                _check_summary(f"{where}.{direction}.{summary}.pooled",
                               d[summary]["pooled"], SUMMARY_FIELDS)
    for name, floor in results["floors"].items():
        _check_summary(f"results.floors.{name}", floor, ("per_round_median", "pooled"))


def _validate_memory(results: dict) -> None:
    _check_summary("results", results, ("rows",))
    for i, row in enumerate(results["rows"]):
        _check_summary(f"results.rows[{i}]", row,
                       ("encap", "key", "params", "cache_size", "key_size", "value_size",
                        "key_value_bytes", "memlock_bytes", "bytes_per_entry"))


_RESULT_CHECKS = {"cost": _validate_cost, "memory": _validate_memory}
