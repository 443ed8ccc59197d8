"""TensorBoard over a selection of experiments, started by `lab ui` (lab/results/board.py's port and readiness checks).

One TensorBoard per selection, kept while `lab ui` runs (the oldest stopped beyond MAX_RUNNING), on 127.0.0.1.
Runs are named by experiment id only; folders go through lab/results/board_mirror.py, as for `lab tensorboard`:
only folders under the storage root, none with a `,` (nothing read from the registry can add a log folder to
the `--logdir_spec` list), and remote ones (S3) as local copies of their event files, kept fresh.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading

from lab.errors import LabError
from lab.results import board_mirror
from lab.results.board import stop

MAX_RUNNING = 3
HOST = "127.0.0.1"


class Boards:
    def __init__(self):
        self._running: dict[tuple[int, ...], tuple[subprocess.Popen, str, board_mirror.Mirror]] = {}
        self._lock = threading.Lock()

    def open(self, ids: list[int], registry) -> str:
        """The URL of a TensorBoard over `ids`' experiments, started unless one already serves them."""
        from lab.results import board

        key = tuple(sorted(set(ids)))
        locations = checked_locations(key, registry)
        with self._lock:
            running = self._running.get(key)
            if running and running[0].poll() is None:
                return running[1]
            while len(self._running) >= MAX_RUNNING:
                self._stop(self._running.pop(next(iter(self._running))))
            mirror = board_mirror.Mirror(locations, say=lambda *_: None)
            spec = ",".join(f"{label}:{folder}" for label, folder in mirror.folders.items())
            port = board.choose_port(HOST, None, say=lambda *_: None)
            process = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir_spec", spec,
                                        "--host", HOST, "--port", str(port)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            url = f"http://{HOST}:{port}/"
            if not board.wait_until_serving(process, url):
                self._stop((process, url, mirror))
                raise LabError(f"TensorBoard did not start on {url}")
            self._running[key] = (process, url, mirror)
            return url

    def stop_all(self) -> None:
        with self._lock:
            for running in self._running.values():
                self._stop(running)
            self._running.clear()

    @staticmethod
    def _stop(running: tuple) -> None:
        process, _, mirror = running
        stop(process)
        mirror.close()


def checked_locations(ids: tuple[int, ...], registry) -> dict:
    """{experiment id: Storage}; LabError for an experiment without a usable folder."""
    rows = [registry.experiment(exp_id) for exp_id in ids]
    for row in rows:
        if not isinstance(row.get("storage_path"), str) or not row["storage_path"]:
            raise LabError(f"experiment {row['id']} has no folder yet")
    locations = board_mirror.locations(rows, label_names=False)
    for label, where in locations.items():
        if where.is_local and not os.path.isdir(where.path):
            raise LabError(f"experiment {label}'s folder is gone")
    return locations
