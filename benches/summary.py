#!/usr/bin/env python3
"""Medians of benches/run.sh's JSON lines, with each run in brackets and the ratio to Nchan.

    benches/summary.py [bench-results]

One block per scenario file (<name>.jsonl, and nchan-<name>.jsonl beside it when Nchan ran it).
Ratios are admin-push / Nchan: below 1 is better for costs and latencies, above 1 for rates.
"""

import json
import statistics
import sys
from pathlib import Path

# (label, path into a run's JSON). Max-rate searches report their best passing trial under "best".
# Runs without events (idle memory, churn) only report the figures marked True.
FIGURES = [
    ("bytes per idle connection", ("server", "bytes_per_idle_conn"), True),
    ("max rate, ev/s", ("max_rate",), False),
    ("delivery p50, ms", ("latency_ms", "p50"), False),
    ("delivery p99, ms", ("latency_ms", "p99"), False),
    ("fan-out p99, ms", ("fanout_ms", "p99"), False),
    ("emit answer p50, ms", ("emit_ms", "p50"), False),
    ("emit answer p99, ms", ("emit_ms", "p99"), False),
    ("emits/s", ("rate_achieved",), False),
    ("server CPU, % of a core", ("server", "cpu_pct"), False),
    ("server CPU ms per 1,000 deliveries", ("server", "cpu_ms_per_1k_deliveries"), False),
    ("server RSS peak, KiB", ("server", "rss_peak_kb"), True),
    ("tool CPU, % of a core", ("client_cpu_pct",), False),
    ("lost", ("lost",), True),
    ("resyncs", ("resyncs",), False),
    ("failed connects", ("connect_failed",), True),
    ("churn: failed cycles", ("failed",), True),
    ("churn: RSS after the warm-up, KiB", ("rss_warm_kb",), True),
    ("churn: RSS once the gauge read 0, KiB", ("rss_after_kb",), True),
    ("churn: last close to gauge 0, ms", ("settle_ms",), True),
]


def figure(run, path):
    value = run
    for key in path:
        if not isinstance(value, dict) or value.get(key) is None:
            return None
        value = value[key]
    return value


def quiet(run):
    """A run in which no event flowed: its delivery, emit and CPU figures mean nothing."""
    return "max_rate" not in run and run.get("events", 0) == 0


def column(runs, path):
    # A max-rate search's other figures are those of its best passing trial.
    if path != ("max_rate",):
        runs = [run.get("best") or {} if "max_rate" in run else run for run in runs]
    values = [figure(run, path) for run in runs]
    return [v for v in values if isinstance(v, (int, float))]


def show(values):
    if not values:
        return "-"
    fmt = (lambda v: f"{v:,.0f}") if max(abs(v) for v in values) >= 100 else (lambda v: f"{v:.2f}")
    return f"{fmt(statistics.median(values))} [{'; '.join(fmt(v) for v in values)}]"


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "bench-results")
    for path in sorted(out.glob("*.jsonl")):
        if path.name.startswith("nchan-"):
            continue
        ours = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        nchan_path = out / f"nchan-{path.name}"
        theirs = (
            [json.loads(line) for line in nchan_path.read_text().splitlines() if line.strip()]
            if nchan_path.exists()
            else []
        )
        print(f"== {path.stem} ({len(ours)} runs; Nchan {len(theirs)} runs)")
        idle = all(quiet(run) for run in ours + theirs)
        for label, key, when_idle in FIGURES:
            if idle and not when_idle:
                continue
            a, b = column(ours, key), column(theirs, key)
            if not a and not b or not any(a + b) and key not in (("lost",), ("failed",)):
                continue
            ratio = (
                f"{statistics.median(a) / statistics.median(b):.2f}x"
                if a and b and statistics.median(b)
                else ""
            )
            print(f"  {label:38} {show(a):44} {show(b):44} {ratio}")


if __name__ == "__main__":
    main()
