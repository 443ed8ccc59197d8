#!/usr/bin/env bash
# A local multi-node Ray cluster on one machine: a head and N workers as separate Ray nodes.
#   cluster/local_cluster.sh start [N_WORKERS] [CPUS_PER_NODE]   prints the address to pass to `lab run --address`
#   cluster/local_cluster.sh stop
# Ports: RAY_PORT (default 6380). The dashboard is off; everything binds to 127.0.0.1.
set -euo pipefail
ray=${RAY:-$(dirname "$0")/../.venv/bin/ray}
port=${RAY_PORT:-6380}
export TF_USE_LEGACY_KERAS=1 RAY_CHDIR_TO_TRIAL_DIR=0
# Ray 2.60 clusters started by `ray start` use token authentication: every node and driver needs the token
# (~/.ray/auth_token, made by the head; or RAY_AUTH_TOKEN). Drivers: export RAY_AUTH_MODE=token too.
export RAY_AUTH_MODE=${RAY_AUTH_MODE:-token}

case "${1:-}" in
  start)
    workers=${2:-1}
    cpus=${3:-1}
    "$ray" start --head --node-ip-address=127.0.0.1 --port="$port" --num-cpus="$cpus" \
      --include-dashboard=false --disable-usage-stats >/dev/null
    for _ in $(seq "$workers"); do
      "$ray" start --address="127.0.0.1:$port" --node-ip-address=127.0.0.1 --num-cpus="$cpus" >/dev/null
    done
    for _ in $(seq 60); do  # wait until every node has registered with the head
      nodes=$("$ray" status --address="127.0.0.1:$port" 2>/dev/null | grep -c " node_" || true)
      [ "$nodes" -ge $((workers + 1)) ] && break
      sleep 1
    done
    echo "127.0.0.1:$port"
    ;;
  stop)
    "$ray" stop --force >/dev/null 2>&1 || true
    ;;
  *)
    echo "usage: $0 start [N_WORKERS] [CPUS_PER_NODE] | stop" >&2
    exit 2
    ;;
esac
