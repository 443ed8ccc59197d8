"""The cluster configs validate against Ray's own schema (launcher) and Ray's own KubeRay translation."""
from __future__ import annotations

import pytest
import yaml

from tests.conftest import ROOT


@pytest.mark.parametrize("name", ["aws.yaml", "gcp.yaml"])
def test_cluster_launcher_config_is_valid(name):
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(yaml.safe_load((ROOT / "cluster" / name).read_text()))
    validate_config(config)  # Ray's ray-schema.json
    assert config["available_node_types"]["gpu_worker"]["max_workers"] == 8


def _validate_ray_cluster_spec(spec: dict) -> dict:
    """KubeRay's RayCluster spec, turned into an autoscaling config by Ray's KubeRay code and validated."""
    from ray.autoscaler._private.kuberay.autoscaling_config import _derive_autoscaling_config_from_ray_cr
    from ray.autoscaler._private.util import validate_config

    config = _derive_autoscaling_config_from_ray_cr({"metadata": {"name": "agent-lab", "namespace": "default"},
                                                     "spec": spec})
    validate_config(config)
    return config


def test_kuberay_raycluster_is_valid():
    manifest = yaml.safe_load((ROOT / "cluster" / "kuberay-raycluster.yaml").read_text())
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] == "RayCluster"
    config = _validate_ray_cluster_spec(manifest["spec"])
    assert config["available_node_types"]["gpu"]["resources"]["GPU"] == 4


def test_kuberay_rayjob_is_valid():
    manifest = yaml.safe_load((ROOT / "cluster" / "kuberay-rayjob.yaml").read_text())
    assert manifest["kind"] == "RayJob" and manifest["spec"]["entrypoint"].startswith("lab run ")
    config = _validate_ray_cluster_spec(manifest["spec"]["rayClusterSpec"])
    assert config["available_node_types"]["gpu"]["resources"]["GPU"] == 4
