"""Sweep throughput on separate hosts (cluster/multihost.py): two worker hosts against one, in one run.

The hosts are Linux namespaces on this machine (root only), each worker pinned to a core of its own
(w1 on CPU 0, w2 on CPU 1; the head, the client with the driver and the S3 server share the last core, so
w2 shares it with them: the figure is a conservative one). The same CPU-bound sweep (gradient boosting on digits,
3-fold CV, n_estimators x learning_rate = 8 trials of 1 CPU, a few seconds each; results and models in S3,
registry in PostgreSQL on the head) runs with `lab run --address` from the client host: first with worker w1 alone, then after w2 has
joined. trials/min counts from the first trial's start to the last trial's end (registry timestamps).

Run it only on an otherwise quiet machine (it prints the load average before and after each sweep):

    python benchmarks/multihost_throughput.py
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cluster import multihost
from cluster.multihost import MultiHost

SWEEP = """
name: NAME
workload: sklearn_cv
params: {dataset: digits, model: gradient_boosting, cv_folds: 3, log_figures: false}
search:
  gradientboostingclassifier__n_estimators: {grid: [20, 30]}
  gradientboostingclassifier__learning_rate: {grid: [0.05, 0.1, 0.2, 0.3]}
metric: cv/accuracy
stop: {training_iteration: 1}
resources: {cpu: 1}
"""
SPAN = """
import json, sys
from lab.registry import Registry
registry = Registry()
(exp,) = [e for e in registry.experiments() if e["name"] == sys.argv[1]]
trials = registry.trials(exp["id"])
span = (max(t["updated_at"] for t in trials) - min(t["started_at"] for t in trials)).total_seconds()
print(json.dumps({"trials": len(trials), "done": sum(t["status"] == "TERMINATED" for t in trials), "span": span}))
"""


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def sweep(harness: MultiHost, name: str) -> dict:
    spec = f"/tmp/{name}.yaml"
    harness.file("client", spec).write_text(SWEEP.replace("NAME", name))
    start = time.perf_counter()
    harness.run("client", ["lab", "run", spec, "--address", f"{harness.address('head')}:{multihost.RAY_PORT}"],
                timeout=1800)
    wall = time.perf_counter() - start
    figures = json.loads(harness.run("client", ["python", "-c", SPAN, name], timeout=120).stdout)
    return {**figures, "wall": wall, "per_min": 60 * figures["trials"] / figures["span"]}


def main() -> int:
    why = multihost.namespaces_permitted()
    if why is not None:
        print(f"multihost_throughput: {why}", file=sys.stderr)
        return 2
    print(f"gradient boosting on digits (3-fold CV), 8 trials of 1 CPU, on {os.cpu_count()} CPUs; load average before: {load()}")
    harness = MultiHost.create()
    rows = []
    try:
        harness.start_services()
        harness.start_ray(workers=("w1",))
        for label, add in (("1 worker host ", None), ("2 worker hosts", "w2")):
            if add:
                harness.start_node(add)
                harness.wait_nodes(4)
            figures = sweep(harness, f"bench-{len(rows) + 1}")
            rows.append((label, figures))
            print(f"{label}: {figures['done']}/{figures['trials']} trials in {figures['span']:.1f} s -> "
                  f"{figures['per_min']:.1f} trials/min (lab run wall {figures['wall']:.1f} s)   "
                  f"load average {load()}", flush=True)
    finally:
        harness.destroy()
    (_, one), (_, two) = rows
    print(f"\n2 worker hosts / 1 worker host: {two['per_min'] / one['per_min']:.2f}x   (load average {load()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
