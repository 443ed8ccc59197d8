"""TensorBoard over a selection of experiments, started by `lab ui` (lab/results/board.py's port and readiness checks).

One TensorBoard per selection, kept while `lab ui` runs (the oldest stopped beyond MAX_RUNNING), on 127.0.0.1.
Runs are named by experiment id only, and a folder whose path holds `,` is refused: nothing read from the
registry can add a log folder to the `--logdir_spec` list.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading

from lab.errors import LabError
from lab.results.board import stop

MAX_RUNNING = 3
HOST = "127.0.0.1"


class Boards:
    def __init__(self):
        self._running: dict[tuple[int, ...], tuple[subprocess.Popen, str]] = {}
        self._lock = threading.Lock()

    def open(self, ids: list[int], registry) -> str:
        """The URL of a TensorBoard over `ids`' experiments, started unless one already serves them."""
        from lab.results import board

        key = tuple(sorted(set(ids)))
        spec = logdir_spec(key, registry)
        with self._lock:
            running = self._running.get(key)
            if running and running[0].poll() is None:
                return running[1]
            while len(self._running) >= MAX_RUNNING:
                stop(self._running.pop(next(iter(self._running)))[0])
            port = board.choose_port(HOST, None, say=lambda *_: None)
            process = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir_spec", spec,
                                        "--host", HOST, "--port", str(port)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            url = f"http://{HOST}:{port}/"
            if not board.wait_until_serving(process, url):
                stop(process)
                raise LabError(f"TensorBoard did not start on {url}")
            self._running[key] = (process, url)
            return url

    def stop_all(self) -> None:
        with self._lock:
            for process, _ in self._running.values():
                stop(process)
            self._running.clear()


def logdir_spec(ids: tuple[int, ...], registry) -> str:
    """`id:folder,...` for TensorBoard; LabError for an experiment without a usable folder."""
    parts = []
    for exp_id in ids:
        path = registry.experiment(exp_id).get("storage_path")
        if not isinstance(path, str) or not path:
            raise LabError(f"experiment {exp_id} has no folder yet")
        if "," in path or any(ord(c) < 32 for c in path):
            raise LabError(f"experiment {exp_id}'s folder cannot be given to TensorBoard (a ',' or a control "
                           "character in its path)")
        if "://" not in path and not os.path.isdir(path):
            raise LabError(f"experiment {exp_id}'s folder is gone")
        parts.append(f"{exp_id}:{path}")
    return ",".join(parts)
