#!/usr/bin/env bash
# A local multi-node Ray cluster on one machine: a head and N workers as separate Ray nodes.
#   cluster/local_cluster.sh start [N_WORKERS] [CPUS_PER_NODE]  prints the address to pass to `lab run --address`
#   cluster/local_cluster.sh stop                               stops this cluster only (not other Ray on the machine)
#   cluster/local_cluster.sh kill-node I                        SIGKILLs worker node I (1..N): a lost machine
#   cluster/local_cluster.sh pids [head|wI]                     the PIDs of this cluster (or of one node)
# Ports: RAY_PORT (default 6380) for the head, DASHBOARD_PORT (default 8265) for the dashboard and its
# job-submission API (`lab submit --address http://127.0.0.1:8265`). Everything binds to 127.0.0.1 except
# Ray's own Ray Client server (on a free port), which Ray binds to the machine's address.
# State: CLUSTER_DIR (default /tmp/lab-cluster-$RAY_PORT); each node gets its own Ray temp dir in it
# (head, w1, w2, ...), so every process of a node names its folder on its command line: that is how
# `stop` and `kill-node` find exactly this cluster's processes. (`ray stop` would stop every Ray on the machine.)
set -euo pipefail
ray=${RAY:-$(dirname "$0")/../.venv/bin/ray}
port=${RAY_PORT:-6380}
dashboard_port=${DASHBOARD_PORT:-8265}
dir=${CLUSTER_DIR:-/tmp/lab-cluster-$port}
export TF_USE_LEGACY_KERAS=1 RAY_CHDIR_TO_TRIAL_DIR=0
# the nodes run the lab of this checkout: `lab` (the entrypoint of submitted jobs) must be on their PATH
PATH="$(cd "$(dirname "$ray")" && pwd):$PATH"
export PATH
# Ray 2.60 clusters started by `ray start` use token authentication: every node and driver needs the token
# (~/.ray/auth_token, made by the head; or RAY_AUTH_TOKEN). Drivers: export RAY_AUTH_MODE=token too.
export RAY_AUTH_MODE=${RAY_AUTH_MODE:-token}
# Several nodes need the multi-node mode (a single-node `lab run` sets the switch to 0 to bind loopback only;
# here the Prometheus metrics endpoints, without authentication, listen on every interface: a test cluster)
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=1  # several nodes on one machine: the multi-node mode (behind the token)

pids() {  # the PIDs of the processes whose command line matches $1 (a node's folder), and their descendants
  # (the dashboard's modules and the nodes' agents name no folder: they are found as descendants)
  local self=$BASHPID  # this shell: its children (ps, awk) are not Ray's
  ps -eo pid=,ppid=,args= | awk -v pattern="$1" -v self="$self" '
    { parent[$1] = $2; if ($1 != self && $2 != self && $0 ~ pattern) keep[$1] = 1 }
    END { for (p in parent) { q = p; while (q in parent && !(q in keep) && q > 1) q = parent[q]; if (q in keep) print p } }'
}
free_port() {  # the dashboard agent's HTTP port is fixed (52365) unless given: one per node, free ones
  "$(dirname "$ray")/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
cluster_pattern() {  # every node's folder, and the head's Ray Client server (started with the head's port)
  echo "$dir/|ray\.util\.client\.server --address=[^ ]*:$port "
}

case "${1:-}" in
  start)
    workers=${2:-1}
    cpus=${3:-1}
    mkdir -p "$dir"
    "$ray" start --head --node-ip-address=127.0.0.1 --port="$port" --num-cpus="$cpus" \
      --temp-dir="$dir/head" --include-dashboard=true --dashboard-host=127.0.0.1 \
      --dashboard-port="$dashboard_port" --dashboard-agent-listen-port="$(free_port)" \
      --ray-client-server-port="$(free_port)" --disable-usage-stats >/dev/null
    for i in $(seq "$workers"); do
      "$ray" start --address="127.0.0.1:$port" --node-ip-address=127.0.0.1 --num-cpus="$cpus" \
        --temp-dir="$dir/w$i" --dashboard-agent-listen-port="$(free_port)" >/dev/null
    done
    for _ in $(seq 60); do  # wait until every node has registered with the head
      nodes=$("$ray" status --address="127.0.0.1:$port" 2>/dev/null | grep -c " node_" || true)
      [ "$nodes" -ge $((workers + 1)) ] && break
      sleep 1
    done
    echo "127.0.0.1:$port"
    ;;
  stop)
    [ -d "$dir" ] || exit 0
    victims=$(pids "$(cluster_pattern)")
    [ -n "$victims" ] && kill -TERM $victims 2>/dev/null || true
    for _ in $(seq 20); do  # give them 10 s to exit, then SIGKILL what is left
      victims=$(pids "$(cluster_pattern)")
      [ -z "$victims" ] && break
      sleep 0.5
    done
    [ -n "$victims" ] && kill -KILL $victims 2>/dev/null || true
    rm -rf "$dir"
    ;;
  kill-node)
    victims=$(pids "$dir/w${2:?which worker node: 1..N}/")
    [ -n "$victims" ] && kill -KILL $victims
    echo "$victims" | wc -w
    ;;
  pids)
    if [ -n "${2:-}" ]; then pids "$dir/$2/"; else pids "$(cluster_pattern)"; fi
    ;;
  *)
    echo "usage: $0 start [N_WORKERS] [CPUS_PER_NODE] | stop | kill-node I | pids [head|wI]" >&2
    exit 2
    ;;
esac
