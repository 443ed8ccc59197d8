"""The local Ray instance a run starts: its processes' environment."""
from __future__ import annotations

import psutil

from lab.infra.local_ray import LOCAL_ENV


def test_the_raylet_of_a_local_instance_gets_the_local_environment(ray_shared):
    """Listeners on loopback, and no idle worker per CPU started for the first driver (the warm pool is
    `lab up`'s): the raylet reads both from its environment."""
    raylets = [p for p in psutil.Process().children(recursive=True) if p.name() == "raylet"]
    assert len(raylets) == 1, raylets
    environ = raylets[0].environ()
    assert {key: environ.get(key) for key in LOCAL_ENV} == LOCAL_ENV
    assert LOCAL_ENV["RAY_prestart_worker_first_driver"] == "0"
