"""`lab up`, `lab down`, `lab status`, `lab submit`, `lab tensorboard`: the Ray instances, jobs and TensorBoard."""
from __future__ import annotations

import argparse

from lab.errors import LabError


def cmd_submit(args: argparse.Namespace) -> int:
    from lab.infra import jobs

    return jobs.submit(args.source, args.overrides, args.address, wait=args.wait, trust_spec=args.trust_spec)


def cmd_tensorboard(args: argparse.Namespace) -> int:
    import os

    from lab.infra.signals import terminate_like_ctrl_c
    from lab.registry import Registry
    from lab.results import board, board_mirror

    if not is_loopback(args.host):
        port = args.port or 6006
        raise LabError(f"TensorBoard has no authentication: it binds to loopback only (got --host {args.host}; "
                       f"reach it from elsewhere through an SSH tunnel: ssh -L {port}:127.0.0.1:{port} HOST)")
    registry = Registry()
    experiments = [registry.experiment(i) for i in args.ids] if args.ids else registry.experiments(limit=10)
    locations = board_mirror.locations(experiments)
    if not locations:
        raise LabError("no experiments to show: run one first (`lab run quickstart`)")
    missing = [where.path for where in locations.values() if where.is_local and not os.path.isdir(where.path)]
    if missing:
        raise LabError(f"experiment folder not found: {missing[0]}")
    folders = board_mirror.Mirror(locations).folders  # remote storage: its event files copied down, kept fresh
    logdir_spec = ",".join(f"{name}:{path}" for name, path in folders.items())
    terminate_like_ctrl_c()  # SIGTERM, SIGHUP: TensorBoard is stopped and its port freed, as on Ctrl-C
    return board.serve(logdir_spec, args.host, args.port, list(folders))


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_up(args: argparse.Namespace) -> int:
    import os

    from lab.infra import warm

    if args.cpus is not None and args.cpus < 1 or args.workers is not None and args.workers < 0:
        raise LabError("--cpus must be at least 1 and --workers at least 0")
    warm.check_none_up()
    pool = args.workers if args.workers is not None else warm.default_pool(args.cpus or os.cpu_count() or 1)
    print("starting a warm local Ray (its workers import TensorFlow and TF-Agents first) ...", flush=True)
    warm.up(num_cpus=args.cpus, pool=pool, dashboard=args.dashboard)
    print(warm.describe())
    print("runs without --address now use it; `lab down` stops it")
    return 0


def cmd_down(_args: argparse.Namespace) -> int:
    """Stop the lab server (runs it started go on) and the warm Ray instance."""
    from lab.infra import server_files, warm

    server = server_files.stop()
    if server is not None:
        print(f"stopped the lab server (pid {server['pid']})")
    if warm.recorded() is None and server is not None:
        return 0
    instance = warm.down()
    print(f"stopped the warm Ray instance at {instance.address} (pid {instance.pid})")
    return 0


def cmd_status(_args: argparse.Namespace) -> int:
    from lab.infra import server_files, warm

    print(server_files.describe())
    print(warm.describe())
    return 0
