#!/usr/bin/env python3
"""The plain-Python baseline of BENCHMARKS.md: `json.load` an export and compute the same
whole-history KPIs as `flow` (per workflow: completed runs, in progress, outcome rates, re-run
rate, throughput per day, duration and queue-time mean and nearest-rank p50/p90/p95/p99).

Reads what `gen-export` writes (a JSON array of `GET /actions/runs` pages), one page, a JSON
array of runs, or NDJSON. Standard library only.

    python3 benches/kpis.py EXPORT.json
"""

import json
import math
import sys
from datetime import datetime


def ms(s):
    if not s:
        return None
    try:
        return int(datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def runs_of(doc):
    if isinstance(doc, dict):
        if "workflow_runs" in doc:
            yield from doc["workflow_runs"]
        elif "workflow_run" in doc:
            yield doc["workflow_run"]
        else:
            yield doc
    elif isinstance(doc, list):
        for item in doc:
            yield from runs_of(item)


def load(path):
    with open(path, "rb") as f:
        text = f.read()
    try:
        return list(runs_of(json.loads(text)))
    except json.JSONDecodeError:
        return [r for line in text.splitlines() if line.strip() for r in runs_of(json.loads(line))]


def outcome(r):
    status, conclusion = r.get("status"), r.get("conclusion")
    if status != "completed" and not conclusion:
        return "in_progress"
    if conclusion == "failure" and r.get("runner_error"):
        return "error"
    return {
        "success": "success",
        "failure": "failure",
        "cancelled": "cancelled",
        "timed_out": "timed_out",
        "startup_failure": "error",
    }.get(conclusion, "other")


def summary(values):
    if not values:
        return None
    values.sort()
    n = len(values)

    def pct(p):
        return values[min(max(math.ceil(p * n / 100), 1), n) - 1]

    return {
        "n": n,
        "mean": sum(values) / n,
        "min": values[0],
        "max": values[-1],
        "p50": pct(50),
        "p90": pct(90),
        "p95": pct(95),
        "p99": pct(99),
    }


def kpis(runs):
    groups = {}
    for r in runs:
        name = r.get("name") or r.get("path") or "workflow-%s" % r.get("workflow_id")
        g = groups.setdefault(name, {"outcomes": {}, "durations": [], "queues": [], "reruns": 0, "created": []})
        o = outcome(r)
        g["outcomes"][o] = g["outcomes"].get(o, 0) + 1
        if o == "in_progress":
            continue
        attempt = r.get("run_attempt") or 1
        created, started, updated = ms(r.get("created_at")), ms(r.get("run_started_at")), ms(r.get("updated_at"))
        g["created"].append(created or 0)
        if attempt > 1:
            g["reruns"] += 1
        start = started if started is not None else created
        if updated is not None and start is not None and updated >= start:
            g["durations"].append(updated - start)
        if attempt <= 1 and started is not None and created is not None and started >= created:
            g["queues"].append(started - created)
    out = []
    for name in sorted(groups):
        g = groups[name]
        count = sum(v for k, v in g["outcomes"].items() if k != "in_progress")
        rate = lambda k: g["outcomes"].get(k, 0) / count if count else 0.0  # noqa: E731
        span = (max(g["created"]) - min(g["created"])) / 86_400_000 if g["created"] else 0
        out.append({
            "workflow": name,
            "count": count,
            "in_progress": g["outcomes"].get("in_progress", 0),
            "success_rate": rate("success"),
            "failure_rate": rate("failure"),
            "cancelled_rate": rate("cancelled"),
            "timed_out_rate": rate("timed_out"),
            "error_rate": rate("error"),
            "rerun_rate": g["reruns"] / count if count else 0.0,
            "throughput_per_day": count / max(span, 1.0),
            "duration_ms": summary(g["durations"]),
            "queue_ms": summary(g["queues"]),
        })
    return {"runs": len(runs), "workflows": out}


if __name__ == "__main__":
    json.dump(kpis(load(sys.argv[1])), sys.stdout, indent=2)
    print()
