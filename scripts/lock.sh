#!/usr/bin/env bash
# Record the whole resolved set of .venv as requirements.lock (scripts/setup.sh installs with it as constraints).
# Run after changing a dependency in pyproject.toml and installing it: scripts/setup.sh --test && scripts/lock.sh
set -euo pipefail
cd "$(dirname "$0")/.."
{
  echo "# The resolved set of 'scripts/setup.sh --test' (Python $(.venv/bin/python -c 'import platform; print(platform.python_version())')),"
  echo "# written by scripts/lock.sh; setup.sh installs with '-c requirements.lock'. Do not edit by hand."
  .venv/bin/python -m pip freeze --exclude-editable --all | grep -v -E '^(pip|setuptools|wheel|uv)=='
} > requirements.lock
echo "lock: $(grep -c '==' requirements.lock) packages in requirements.lock"
