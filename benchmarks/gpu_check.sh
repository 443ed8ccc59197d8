#!/usr/bin/env bash
# A GPU check (at most 5 minutes): PPO Breakout and a Keras CNN steps/s on the GPU against the CPU, and
# MirroredStrategy over the visible GPUs, as one table. Uses ./.venv, or builds it with scripts/setup.sh
# (PyPI only). Without a GPU it says so and runs the CPU side. `--tiny`: a seconds-long run of the script.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! .venv/bin/python -c "import tf_agents, ale_py" 2>/dev/null; then
  timeout 180 bash scripts/setup.sh
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" TF_USE_LEGACY_KERAS=1 TF_CPP_MIN_LOG_LEVEL=3
exec timeout 290 .venv/bin/python benchmarks/gpu_check.py "$@"
