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


# ------------------------------------------------------------------ KubeRay structure
# No KubeRay CRD schema ships with Ray or anything installed here (ray.io_rayclusters.yaml lives in the
# KubeRay operator's Helm chart), so the manifests' structure is checked by hand beside Ray's translation.
def _groups(spec: dict) -> tuple[dict, list[dict]]:
    return spec["headGroupSpec"], spec["workerGroupSpecs"]


def _container(group: dict) -> dict:
    (container,) = group["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize("name, dashboard_host", [("kuberay-raycluster.yaml", "127.0.0.1"),
                                                  ("kuberay-rayjob.yaml", "0.0.0.0")])
def test_kuberay_manifest_structure(name, dashboard_host):
    manifest = yaml.safe_load((ROOT / "cluster" / name).read_text())
    assert manifest["apiVersion"] == "ray.io/v1"
    spec = manifest["spec"].get("rayClusterSpec", manifest["spec"])
    assert spec["rayVersion"] == __import__("ray").__version__  # the image's Ray must match the lab's
    head, workers = _groups(spec)
    # RayCluster: only `kubectl port-forward` reaches the dashboard; RayJob: KubeRay submits through the Service
    assert head["rayStartParams"]["dashboard-host"] == dashboard_host
    assert head["rayStartParams"]["num-cpus"] == "0"  # trials run on workers
    gpu_groups = [g for g in workers if "nvidia.com/gpu" in _container(g)["resources"].get("limits", {})]
    assert gpu_groups, "no GPU worker group"
    for group in gpu_groups:
        container = _container(group)
        limits, requests = container["resources"]["limits"], container["resources"].get("requests", {})
        assert int(limits["nvidia.com/gpu"]) >= 1 and requests.get("nvidia.com/gpu", limits["nvidia.com/gpu"]) == limits["nvidia.com/gpu"]
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        assert any(t.get("key") == "nvidia.com/gpu" for t in group["template"]["spec"].get("tolerations", []))
    for group in [head, *workers]:
        env = {e["name"] for e in _container(group).get("env", [])}
        assert "TF_USE_LEGACY_KERAS" in env or "TF_USE_LEGACY_KERAS" in manifest["spec"].get("runtimeEnvYAML", "")
    registry = next(e for e in _container(head)["env"] if e["name"] == "LAB_REGISTRY_URL")
    assert "secretKeyRef" in registry["valueFrom"]  # credentials come from a Secret, never inline


def test_rayjob_entrypoint_is_a_lab_run_on_its_own_cluster():
    manifest = yaml.safe_load((ROOT / "cluster" / "kuberay-rayjob.yaml").read_text())
    from lab import spec as specs

    command = manifest["spec"]["entrypoint"].split()
    assert command[:2] == ["lab", "run"] and command[-2:] == ["--address", "auto"]
    sets = [command[i + 1] for i, word in enumerate(command) if word == "--set"]
    specs.load(command[2], sets)  # the preset and overrides it runs are valid
