"""Separate "hosts" on this machine, built from Linux namespaces (root only): a multi-host Ray cluster.

Every host has its own network namespace (one veth to a bridge, its own address on a private subnet), its own
PID, UTS (hostname) and mount namespaces, and a root file system of its own (cluster/host_root.sh): the
system folders, the code and the Python env read-only, and its private /tmp, HOME (/home/lab), LAB_HOME
(/var/lab) and /dev/shm. The bridge lives in a namespace of its own, with no address and no link to the
machine's network: packets go only between the harness's hosts. Hosts:

    head    10.213.0.2   Ray head (no CPUs for trials) with its dashboard and job API on port 8265 (the
                         token asked for), PostgreSQL (the registry) on port 5432
    w1, w2  .3, .4       Ray workers, 1 CPU each, each pinned to its own core where there are enough
    client  .5           where `lab` runs: a Ray node with no CPUs (the driver needs a local raylet)
    s3      .6           moto's S3 server on port 5000 (LAB_STORAGE=s3://lab/experiments)
    probe   .9           no token: for exposure probes

    harness = MultiHost.create()         # network + host namespaces; nothing started yet
    harness.start_services(); harness.start_ray()
    harness.run("client", ["lab", "run", ...])
    harness.kill_host("w2"); harness.set_link("w1", up=False); harness.block("w1", "head", 5432)
    harness.destroy()                    # every process, namespace and folder it made

The harness's state (namespace names, init PIDs) is kept in its folder, so `python cluster/multihost.py`
can drive it from a shell (see cluster/README.md). Namespaces are named `labmh<PID>-...` after the process
that made them; `cleanup_stale()` removes those whose maker is gone.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(os.path.realpath(ROOT / ".venv")) if (ROOT / ".venv").exists() else Path(sys.prefix)
HOST_ROOT = ROOT / "cluster" / "host_root.sh"
SUBNET = "10.213.0"
PREFIX = "labmh"
RAY_PORT, PG_PORT, S3_PORT, DASHBOARD_PORT = 6379, 5432, 5000, 8265
# PostgreSQL's folder on the head, a disk of its own: not under LAB_HOME (/var/lab), which the lab keeps 0700
# (a `lab submit` job on the head made it so, and PostgreSQL, another user, could not start again after a reboot)
PG_DIR = "/var/lib/postgresql/lab"
BUCKET = "lab"
# Ray's Prometheus endpoints answer anyone (no token): the nodes' agents export none (metrics collection
# off), and the dashboard's (44227) and the autoscaler's (44217), on every interface of the head with no
# setting for their address in Ray 2.60, are dropped at the head's link
NODE_ENV = {"RAY_enable_metrics_collection": "0"}
HEAD_METRICS_PORTS = [44217, 44227]  # the autoscaler's, the dashboard's
# name: (last byte of the address, holds the cluster token)
LAYOUT = {"head": (2, True), "w1": (3, True), "w2": (4, True), "client": (5, True), "s3": (6, False),
          "probe": (9, False)}


def namespaces_permitted() -> str | None:
    """None when this process can build the harness, else why not (one line)."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root"
    private_tmp = Path("/tmp")  # noqa: S108 - each host replaces it with its own
    for shown in (ROOT, VENV, Path(os.path.realpath(sys.base_prefix))):
        if shown == private_tmp or private_tmp in shown.parents:
            return f"{shown} lies under /tmp, which every host replaces with its own: use a checkout elsewhere"
    for tool in ("ip", "unshare", "nsenter", "chroot", "ss", "taskset"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    probe = f"{PREFIX}{os.getpid()}-check"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, check=False)
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def _pin(host: str, cores: int) -> str | None:
    """The core a host runs on: workers get one each; head, client and s3 share the last one."""
    if cores < 2:
        return None
    if host in ("w1", "w2"):
        return str((int(host[1]) - 1) % cores)
    return str(cores - 1)


@dataclass
class Host:
    name: str
    namespace: str
    address: str
    folder: str  # on the machine: tmp/, home/, lab/ (its private /tmp, HOME, LAB_HOME)
    cpu: str | None
    token: bool
    init_pid: int = 0  # PID 1 of its PID namespace (in ours): every other process of the host descends from it


@dataclass
class MultiHost:
    folder: str
    bridge: str
    pg_password: str = field(default_factory=lambda: secrets.token_hex(16))
    s3_keys: dict[str, str] = field(default_factory=dict)  # AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY of moto's user
    hosts: dict[str, Host] = field(default_factory=dict)

    # ------------------------------------------------------------------ life cycle
    @classmethod
    def create(cls, folder: str | None = None) -> MultiHost:
        """The bridge and every host's namespaces; on any failure, everything made so far is removed."""
        cleanup_stale()
        folder = folder or tempfile.mkdtemp(prefix="lab-multihost-")
        tag = f"{PREFIX}{os.getpid()}-{secrets.token_hex(2)}"
        harness = cls(folder=folder, bridge=f"{tag}-br")
        try:
            harness._build(tag)
        except BaseException:
            harness.destroy()
            raise
        return harness

    def _build(self, tag: str) -> None:
        token = secrets.token_hex(24)
        _ip("netns", "add", self.bridge)
        self.save()
        _ip("-n", self.bridge, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.bridge, "link", "set", "br0", "up")
        cores = os.cpu_count() or 1
        for name, (last, has_token) in LAYOUT.items():
            host = Host(name, f"{tag}-{name}", f"{SUBNET}.{last}", str(Path(self.folder) / name), _pin(name, cores),
                        has_token)
            self.hosts[name] = host
            _ip("netns", "add", host.namespace)
            self.save()
            # both ends made in the bridge's namespace, one moved into the host's: nothing in the machine's
            _ip("-n", self.bridge, "link", "add", f"v-{name}", "type", "veth", "peer", "name", "eth0",
                "netns", host.namespace)
            _ip("-n", self.bridge, "link", "set", f"v-{name}", "master", "br0", "up")
            _ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
            _ip("-n", host.namespace, "link", "set", "eth0", "up")
            _ip("-n", host.namespace, "link", "set", "lo", "up")
            for sub in ("tmp", "home/.ray", "lab", "pg"):
                os.makedirs(Path(host.folder) / sub, exist_ok=True)
            if has_token:  # the cluster's token, on each host that belongs to the cluster
                path = Path(host.folder) / "home" / ".ray" / "auth_token"
                path.write_text(token)
                path.chmod(0o600)
            self.boot(name)

    def boot(self, name: str) -> None:
        """Start the host's PID 1 (a reaper) in fresh PID, mount and UTS namespaces on its network namespace."""
        host = self.hosts[name]
        command = ["ip", "netns", "exec", host.namespace, "unshare", "--mount", "--uts", "--pid", "--fork",
                   "--propagation", "private", "sh", str(HOST_ROOT), host.folder, self._read_only(), name, "--",
                   f"{VENV}/bin/python", "-c", REAPER]
        if host.cpu is not None:
            command = ["taskset", "-c", host.cpu, *command]
        with open(Path(self.folder) / f"{name}.boot.log", "ab") as log:
            unshare = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                                       start_new_session=True)
        deadline = time.time() + 20
        while time.time() < deadline and not host.init_pid:
            host.init_pid = _init_pid(unshare.pid)
            time.sleep(0.1)
        if not host.init_pid:
            raise RuntimeError(f"host {name} did not boot: {(Path(self.folder) / f'{name}.boot.log').read_text()[-500:]}")
        while time.time() < deadline:  # booted once its root is in place
            if self.run(name, ["true"], timeout=10, check=False).returncode == 0:
                break
            time.sleep(0.2)
        self.save()

    def destroy(self) -> None:
        """Kill every process of every host, delete the namespaces (and with them the veths and the bridge),
        remove the folder. Safe to call twice and on a half-built harness."""
        for name in list(self.hosts):
            self.kill_host(name)
        for host in self.hosts.values():
            _ip("netns", "del", host.namespace, check=False)
        _ip("netns", "del", self.bridge, check=False)
        shutil.rmtree(self.folder, ignore_errors=True)

    def save(self) -> None:
        Path(self.folder, "harness.json").write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, folder: str) -> MultiHost:
        data = json.loads(Path(folder, "harness.json").read_text())
        data["hosts"] = {name: Host(**host) for name, host in data["hosts"].items()}
        return cls(**data)

    # ------------------------------------------------------------------ commands on a host
    def _read_only(self) -> str:
        paths = {str(ROOT), str(VENV), os.path.realpath(sys.base_prefix)}
        return ":".join(sorted(paths))

    def command(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> tuple[list[str], dict]:
        """argv run on host `name` (in all its namespaces and its root), and its whole environment (+ env):
        given to the process, not on its command line, where everyone on the machine would read the secrets."""
        host = self.hosts[name]
        base = {"PATH": f"{VENV}/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": "/home/lab",
                "LAB_HOME": "/var/lab", "TMPDIR": "/tmp",  # noqa: S108 - the host's private /tmp
                "PYTHONPATH": str(ROOT), "TF_USE_LEGACY_KERAS": "1",
                "TF_CPP_MIN_LOG_LEVEL": "2", "RAY_USAGE_STATS_ENABLED": "0", "LANG": "C.UTF-8"}
        if host.token:  # the token goes to the head the hosts were given, and nowhere else (lab/infra/ray_tokens.py)
            base.update(RAY_AUTH_MODE="token", LAB_RAY_TOKEN_HOSTS=self.address("head"))
        if name != "probe":
            base.update(self.s3_keys, AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=f"http://{self.address('s3')}:{S3_PORT}",
                        LAB_STORAGE=f"s3://{BUCKET}/experiments",
                        LAB_REGISTRY_URL=self.registry_url)
        base.update(env or {})
        command = ["nsenter", "-t", str(host.init_pid), "-n", "-m", "-u", "-p", "-r", "-w", "--", *argv]
        return (["taskset", "-c", host.cpu, *command] if host.cpu is not None else command), base

    def run(self, name: str, argv: list[str], env: dict | None = None, timeout: float = 300,
            check: bool = True) -> subprocess.CompletedProcess:
        command, environment = self.command(name, argv, env)
        result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=timeout,
                                check=False)
        if check and result.returncode != 0:
            raise RuntimeError(f"on {name}: {' '.join(argv)} exited {result.returncode}: "
                               f"{(result.stdout + result.stderr)[-3000:]}")
        return result

    def popen(self, name: str, argv: list[str], env: dict | None = None, **kwargs) -> subprocess.Popen:
        command, environment = self.command(name, argv, env)
        return subprocess.Popen(command, env=environment, **kwargs)

    @property
    def registry_url(self) -> str:
        return f"postgresql://lab:{self.pg_password}@{self.address('head')}:{PG_PORT}/lab"

    @staticmethod
    def address(name: str) -> str:
        return f"{SUBNET}.{LAYOUT[name][0]}"

    def file(self, name: str, path: str) -> Path:
        """Where a host's private file lies on the machine (the operator's view): /tmp, /home/lab or /var/lab."""
        for prefix, sub in (("/tmp", "tmp"),  # noqa: S108 - a host's private /tmp
                             ("/home/lab", "home"), ("/var/lab", "lab"), (PG_DIR, "pg")):
            if path == prefix or path.startswith(prefix + "/"):
                return Path(self.hosts[name].folder, sub, path[len(prefix):].lstrip("/"))
        raise ValueError(f"{path} is not a private folder of a host")

    def listeners(self, name: str) -> list[tuple[str, int, str]]:
        """(address, port, process name) of every listening TCP socket in the host's network namespace."""
        listed = subprocess.run(["ip", "netns", "exec", self.hosts[name].namespace, "ss", "-ltnpH"],
                                capture_output=True, text=True, check=True, timeout=30).stdout
        found = set()
        for line in listed.splitlines():
            fields = line.split()
            address, _, port = fields[3].rpartition(":")
            process = fields[5].split('"')[1] if len(fields) > 5 and '"' in fields[5] else "?"
            found.add((address.strip("[]"), int(port), process))
        return sorted(found)

    # ------------------------------------------------------------------ faults
    def pids(self, name: str) -> list[int]:
        """Every process in the host's network namespace (its PID 1 and all it started)."""
        listed = _ip("netns", "pids", self.hosts[name].namespace, check=False).stdout.split()
        return [int(pid) for pid in listed]

    def kill_host(self, name: str, timeout: float = 30) -> int:
        """SIGKILL every process of the host (a machine lost); return how many there were. Its folder stays
        (its disk), its /dev/shm is gone; `boot(name)` brings it back without anything running."""
        host = self.hosts[name]
        victims = set(self.pids(name)) | ({host.init_pid} if _alive(host.init_pid) else set())
        killed = len(victims)
        deadline = time.time() + timeout
        while victims and time.time() < deadline:
            for pid in victims:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
            victims = {pid for pid in set(self.pids(name)) | {host.init_pid} if _alive(pid)}
        if victims:
            raise RuntimeError(f"host {name}: processes {sorted(victims)} survived SIGKILL")
        host.init_pid = 0
        self.save()
        return killed

    def set_link(self, name: str, up: bool) -> None:
        """Cut (or restore) the host's only link: its veth's end on the bridge."""
        _ip("-n", self.bridge, "link", "set", f"v-{name}", "up" if up else "down")

    def block(self, name: str, target: str, port: int) -> None:
        """Make target:port unreachable from the host (a policy-routing rule: `prohibit`), the rest not."""
        _ip("-n", self.hosts[name].namespace, "rule", "add", *self._rule(target, port))

    def unblock(self, name: str, target: str, port: int) -> None:
        _ip("-n", self.hosts[name].namespace, "rule", "del", *self._rule(target, port))

    def _rule(self, target: str, port: int) -> list[str]:
        return ["to", self.address(target), "ipproto", "tcp", "dport", str(port), "prohibit"]

    def close_ports(self, name: str, ports: list[int]) -> None:
        """Refuse every connection the host gets on its bridge link to `ports` (a firewall, a security group):
        policy-routing rules looked up before the local table (moved behind them)."""
        ns = self.hosts[name].namespace
        rules = _ip("-n", ns, "rule", "show").stdout
        for port in ports:
            if f"dport {port} prohibit" not in rules:
                _ip("-n", ns, "rule", "add", "pref", "10", "iif", "eth0", "ipproto", "tcp", "dport", str(port),
                    "prohibit")
        if "100:\tfrom all lookup local" not in rules:
            _ip("-n", ns, "rule", "add", "pref", "100", "lookup", "local")
            _ip("-n", ns, "rule", "del", "pref", "0", "lookup", "local")

    # ------------------------------------------------------------------ services
    def start_services(self) -> None:
        """PostgreSQL on the head's address (database `lab`, user `lab`), moto's S3 on the s3 host with the bucket."""
        self.start_postgres()
        self.start_s3()

    def start_postgres(self) -> None:
        """PostgreSQL on the head (after a fresh boot of the head: a server running there is not detected)."""
        pg = _pg_bin()
        data = self.file("head", PG_DIR)
        fresh = not (data / "data").exists()  # the folder itself is there from the first boot
        data.mkdir(parents=True, exist_ok=True)
        shutil.chown(data, "postgres")
        data.chmod(0o700)
        run_as = ["runuser", "-u", "postgres", "--"]
        for stale in ("data/postmaster.pid", f".s.PGSQL.{PG_PORT}.lock"):  # left by a lost head: PIDs were its own
            (data / stale).unlink(missing_ok=True)
        if fresh:  # a password for connections over the network; trust only on the head's own socket
            password = self.file("head", f"{PG_DIR}/password")
            password.write_text(self.pg_password)
            shutil.chown(password, "postgres")
            self.run("head", [*run_as, f"{pg}/initdb", "-D", f"{PG_DIR}/data", "-U", "lab", "--auth-local=trust",
                              "--auth-host=scram-sha-256", f"--pwfile={PG_DIR}/password", "-E", "UTF8"])
            password.unlink()
            with open(self.file("head", f"{PG_DIR}/data/pg_hba.conf"), "a") as hba:
                hba.write(f"host all all {SUBNET}.0/24 scram-sha-256\n")
        self.run("head", [*run_as, f"{pg}/pg_ctl", "-D", f"{PG_DIR}/data", "-l", f"{PG_DIR}/log", "-w", "start",
                          "-o", (f"-p {PG_PORT} -k {PG_DIR} -c listen_addresses={self.address('head')} "
                                 "-c max_connections=100 -c fsync=off")])
        if fresh:
            self.run("head", ["psql", "-h", PG_DIR, "-p", str(PG_PORT), "-U", "lab", "postgres",
                              "-c", "CREATE DATABASE lab"])

    def start_s3(self) -> None:
        """moto's S3 server with authentication on: its first actions (unauthenticated) make an IAM user with
        an S3 policy and a key, which every host then uses; anything else without that key is refused."""
        self.popen("s3", ["moto_server", "-H", self.address("s3"), "-p", str(S3_PORT)],
                   env={"INITIAL_NO_AUTH_ACTION_COUNT": "3"}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, start_new_session=True)
        made = self.run("head", ["python", "-c", MAKE_S3_USER, BUCKET], timeout=120,
                        env={"AWS_ACCESS_KEY_ID": "bootstrap", "AWS_SECRET_ACCESS_KEY": "bootstrap"})
        self.s3_keys = json.loads(made.stdout)
        self.save()

    def start_ray(self, workers: tuple[str, ...] = ("w1", "w2"), client: bool = True) -> str:
        """`ray start` on the head (0 CPUs, the dashboard and its job API on the head's address, token required),
        the workers (1 CPU each) and the client (0 CPUs); the head's address."""
        head = f"{self.address('head')}:{RAY_PORT}"
        self.close_ports("head", HEAD_METRICS_PORTS)
        self.write_pgpass("head")  # `lab submit`'s jobs get the registry's URL without its password
        self.run("head", ["ray", "start", "--head", f"--node-ip-address={self.address('head')}",
                          f"--port={RAY_PORT}", "--num-cpus=0", "--include-dashboard=true",
                          f"--dashboard-host={self.address('head')}", f"--dashboard-port={DASHBOARD_PORT}",
                          "--disable-usage-stats"], env=NODE_ENV, timeout=120)
        for name in (*workers, *(("client",) if client else ())):
            self.start_node(name)
        self.wait_nodes(1 + len(workers) + int(client))
        return head

    def write_pgpass(self, name: str) -> None:
        """The registry's password in the host's ~/.pgpass (0600), where libpq finds it."""
        path = self.file(name, "/home/lab/.pgpass")
        path.write_text(f"{self.address('head')}:{PG_PORT}:lab:lab:{self.pg_password}\n")
        path.chmod(0o600)

    def restart_head(self) -> str:
        """After the head was lost: boot it, PostgreSQL on its data (its disk survived), and a fresh Ray
        cluster: the head, then every node again (their raylets gave up on the old head). The head's address."""
        self.boot("head")
        self.start_postgres()
        for name in ("w1", "w2", "client"):
            self.kill_host(name)
            self.boot(name)
        return self.start_ray()

    def start_node(self, name: str) -> None:
        cpus = "0" if name == "client" else "1"
        self.run(name, ["ray", "start", f"--address={self.address('head')}:{RAY_PORT}",
                        f"--node-ip-address={self.address(name)}", f"--num-cpus={cpus}"], env=NODE_ENV, timeout=120)

    def wait_nodes(self, count: int, timeout: float = 90) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            status = self.run("head", ["ray", "status", f"--address={self.address('head')}:{RAY_PORT}"],
                              check=False, timeout=60)
            if status.stdout.count(" node_") >= count:
                return
            time.sleep(1)
        raise RuntimeError(f"fewer than {count} Ray nodes after {timeout:.0f} s: {status.stdout[-1000:]}")

    def s3_objects(self, prefix: str = "") -> list[str]:
        """Every key in the bucket under `prefix` (read from the client host)."""
        script = ("import boto3, json, sys\n"
                  "pages = boto3.client('s3').get_paginator('list_objects_v2')"
                  f".paginate(Bucket='{BUCKET}', Prefix=sys.argv[1])\n"
                  "print(json.dumps([o['Key'] for p in pages for o in p.get('Contents', [])]))\n")
        return json.loads(self.run("client", ["python", "-c", script, prefix], timeout=60).stdout)

    def s3_read(self, key: str) -> str:
        script = (f"import boto3, sys; sys.stdout.write(boto3.client('s3').get_object(Bucket='{BUCKET}', "
                  "Key=sys.argv[1])['Body'].read().decode())")
        return self.run("client", ["python", "-c", script, key], timeout=60).stdout


MAKE_S3_USER = """
import json, sys, time
import boto3

policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
iam = boto3.client("iam")
for _ in range(100):  # until the server answers (a refused connection is no action)
    try:
        iam.create_user(UserName="lab")
        break
    except Exception:
        time.sleep(0.2)
else:
    raise SystemExit("moto did not answer")
iam.put_user_policy(UserName="lab", PolicyName="s3", PolicyDocument=json.dumps(policy))
key = iam.create_access_key(UserName="lab")["AccessKey"]
keys = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
boto3.client("s3", aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
             aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"]).create_bucket(Bucket=sys.argv[1])
print(json.dumps(keys))
"""

REAPER = """
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_DFL)
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.5)
"""


def _pg_bin() -> str:
    import glob

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
    return str(Path(found[-1]).parent)


def _alive(pid: int) -> bool:
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _init_pid(unshare_pid: int) -> int:
    """The child that `unshare --fork` made: PID 1 of the new PID namespace."""
    try:
        children = Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children").read_text().split()
    except OSError:
        return 0
    return int(children[0]) if children else 0


def cleanup_stale() -> list[str]:
    """Delete the harness namespaces whose maker process is gone (a run killed before its teardown)."""
    removed = []
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        if not name.startswith(PREFIX):
            continue
        maker = name[len(PREFIX):].split("-", 1)[0]
        if maker.isdigit() and not _alive(int(maker)):
            for pid in _ip("netns", "pids", name, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            _ip("netns", "del", name, check=False)
            removed.append(name)
    return removed


def main(argv: list[str]) -> int:
    """A shell's way to the harness: see cluster/README.md."""
    import argparse

    parser = argparse.ArgumentParser(prog="cluster/multihost.py")
    sub = parser.add_subparsers(dest="action", required=True)
    up = sub.add_parser("up", help="build the hosts, start PostgreSQL, S3 and Ray; print the folder")
    up.add_argument("--folder")
    for name in ("down", "kill", "boot", "link", "block", "unblock", "exec", "node", "restart-head"):
        action = sub.add_parser(name)
        action.add_argument("folder")
        if name not in ("down", "restart-head"):
            action.add_argument("host", choices=list(LAYOUT))
        if name == "link":
            action.add_argument("state", choices=["up", "down"])
        if name in ("block", "unblock"):
            action.add_argument("target", choices=list(LAYOUT))
            action.add_argument("port", type=int)
        if name == "exec":
            action.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.action == "up":
        if (why := namespaces_permitted()) is not None:
            print(f"multihost: {why}", file=sys.stderr)
            return 2
        harness = MultiHost.create(args.folder)
        try:
            harness.start_services()
            print(harness.start_ray(), file=sys.stderr)
        except BaseException:
            harness.destroy()
            raise
        print(harness.folder)
        return 0
    harness = MultiHost.load(args.folder)
    if args.action == "down":
        harness.destroy()
    elif args.action == "kill":
        print(harness.kill_host(args.host))
    elif args.action == "boot":
        harness.boot(args.host)
    elif args.action == "restart-head":
        print(harness.restart_head())
    elif args.action == "node":
        harness.start_node(args.host)
    elif args.action == "link":
        harness.set_link(args.host, args.state == "up")
    elif args.action == "block":
        harness.block(args.host, args.target, args.port)
    elif args.action == "unblock":
        harness.unblock(args.host, args.target, args.port)
    elif args.action == "exec":
        argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        command, environment = harness.command(args.host, argv)
        return subprocess.run(command, env=environment, check=False).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
