#!/usr/bin/env bash
# Every test, as `make test` runs them after set-up: the multi-node cluster tests (tests/cluster, one at a
# time: they mostly wait on faults they inject) beside the rest (3 workers, or LAB_TEST_WORKERS). Their Ray
# nodes' health checks must not starve behind the other tests, so where a cgroup v1 `cpu` controller is
# writable (root, as in CI) they run in a group of 8x the CPU weight; elsewhere they run after the rest, alone.
set -u
cd "$(dirname "$0")/.."
py=.venv/bin/python
workers=${LAB_TEST_WORKERS:-3}
if ! [[ $workers =~ ^[1-9][0-9]?$ ]]; then  # refused before any test starts (the cluster part included)
  echo "test_all.sh: LAB_TEST_WORKERS must be a whole number from 1 to 99, got '${workers:0:40}'" >&2
  exit 2
fi
rest=(-m pytest -n "$workers" --dist loadgroup --ignore=tests/cluster -ra --durations=20)
cluster=(-m pytest tests/cluster -ra --durations=10)
groups=/sys/fs/cgroup/cpu
if [ "${LAB_TESTS_SEQUENTIAL:-0}" != 1 ] && mkdir -p "$groups/lab-tests-cluster" "$groups/lab-tests-rest" 2>/dev/null \
   && echo 8192 > "$groups/lab-tests-cluster/cpu.shares" && echo 1024 > "$groups/lab-tests-rest/cpu.shares"; then
  log=$(mktemp /tmp/lab-tests-cluster.XXXXXX.log)
  (echo "$BASHPID" > "$groups/lab-tests-cluster/cgroup.procs" && exec "$py" "${cluster[@]}") > "$log" 2>&1 &
  beside=$!
  (echo "$BASHPID" > "$groups/lab-tests-rest/cgroup.procs" && exec "$py" "${rest[@]}"); first=$?
  wait "$beside"; second=$?
  echo "---------------- tests/cluster, run beside the tests above at a higher CPU weight ----------------"
  cat "$log" && rm -f "$log"
  rmdir "$groups/lab-tests-cluster" "$groups/lab-tests-rest" 2>/dev/null  # kept while a leftover process is in one
else
  echo "tests/cluster runs after the other tests (LAB_TESTS_SEQUENTIAL=1, or no writable cgroup v1 cpu controller to give it priority)"
  "$py" "${rest[@]}"; first=$?
  "$py" "${cluster[@]}"; second=$?
fi
exit $(( first | second ))
