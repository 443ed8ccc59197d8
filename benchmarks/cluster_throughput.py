"""Sweep throughput on the local multi-node cluster (cluster/local_cluster.sh) against a single node.

The same sweep (svc-digits, RBF SVC on digits with 5-fold CV, C x gamma = 12 trials of 1 CPU each) runs
with `lab run --address` on clusters of different shapes, one after the other, each started fresh:

    1x2  one node with 2 CPUs             the baseline
    2x1  two nodes with 1 CPU each        the same 2 CPU slots, split over two Ray nodes
    2x2  two nodes with 2 CPUs each       4 slots: what "adding a node" looks like when it is this machine

trials/min counts from the first trial's start to the last trial's end (registry timestamps), so the
driver's start-up is left out; the wall time of `lab run` is printed beside it.

What the ratios can show on one 2-core machine: 2x1 / 1x2 is the cost of spreading trials over Ray nodes
(scheduling across raylets, one more raylet and agents competing for the same cores): it should be close
to 1. What they cannot show: scaling. The nodes share the same 2 cores, so 2x2 / 1x2 runs twice as many
trials at once on the same cores and can only stay near 1 (or drop, from contention); real scaling needs
nodes on separate machines (cluster/aws.yaml, gcp.yaml, KubeRay).

The layouts run one after the other, so the first one also pays the cold start (imports, page cache)
and the load of a shared machine moves between them: swap the order (--layouts 2x1,1x2) before reading
a ratio, and compare only figures taken side by side.

    python benchmarks/cluster_throughput.py [--layouts 1x2,2x1,2x2]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "cluster" / "local_cluster.sh"
BIN = Path(sys.executable).parent
GRID = ["search.svc__C.grid=[0.1, 1.0, 10.0, 100.0]", "search.svc__gamma.grid=[scale, 0.001, 0.01]",
        "params.log_figures=false"]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_layout(nodes: int, cpus: int, home: Path) -> dict:
    env = {**os.environ, "RAY": str(BIN / "ray"), "RAY_PORT": str(free_port()), "DASHBOARD_PORT": str(free_port()),
           "LAB_HOME": str(home), "RAY_AUTH_MODE": "token"}
    env["CLUSTER_DIR"] = f"/tmp/lab-bench-cluster-{env['RAY_PORT']}"
    started = subprocess.run([str(SCRIPT), "start", str(nodes - 1), str(cpus)], capture_output=True, text=True,
                             env=env, timeout=300)
    try:
        if started.returncode != 0:
            raise RuntimeError(started.stderr[-2000:])
        address = started.stdout.split()[-1]
        start = time.perf_counter()
        result = subprocess.run([str(BIN / "lab"), "run", "svc-digits", "--address", address,
                                 *[a for item in GRID for a in ("--set", item)]],
                                capture_output=True, text=True, env=env, timeout=1800)
        wall = time.perf_counter() - start
        if result.returncode != 0:
            raise RuntimeError(result.stdout[-2000:] + result.stderr[-2000:])
    finally:
        subprocess.run([str(SCRIPT), "stop"], capture_output=True, env=env, timeout=300)
    from lab.registry import Registry

    registry = Registry(f"sqlite:///{home / 'registry.db'}")
    exp_id = registry.experiments(limit=1)[0]["id"]
    trials = registry.trials(exp_id)
    span = (max(t["updated_at"] for t in trials) - min(t["started_at"] for t in trials)).total_seconds()
    return {"trials": len(trials), "span": span, "wall": wall, "per_min": 60 * len(trials) / span}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layouts", default="1x2,2x1,2x2", help="NODESxCPUS_PER_NODE, comma-separated; the first is the baseline")
    args = parser.parse_args()
    print(f"svc-digits, 12 trials of 1 CPU, on {os.cpu_count()} CPUs; load average before: {load()}\n")
    rows = []
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as folder:
        for layout in args.layouts.split(","):
            nodes, cpus = (int(x) for x in layout.split("x"))
            figures = run_layout(nodes, cpus, Path(folder) / layout)
            rows.append((layout, figures))
            print(f"{layout}: {figures['trials']} trials in {figures['span']:.1f} s -> {figures['per_min']:.1f} trials/min "
                  f"(lab run wall {figures['wall']:.1f} s)   load average {load()}", flush=True)
    base = rows[0][1]["per_min"]
    print()
    for layout, figures in rows:
        print(f"{layout:>4}  {figures['per_min']:7.1f} trials/min   {figures['per_min'] / base:5.2f}x of {rows[0][0]}")


if __name__ == "__main__":
    main()
