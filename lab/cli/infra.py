"""`lab up`, `lab down`, `lab status`, `lab submit`, `lab tensorboard`: the Ray instances, jobs and TensorBoard."""
from __future__ import annotations

import argparse

from lab.errors import LabError


def cmd_submit(args: argparse.Namespace) -> int:
    from lab.infra import jobs

    return jobs.submit(args.source, args.overrides, args.address, wait=args.wait, trust_spec=args.trust_spec)


def cmd_tensorboard(args: argparse.Namespace) -> int:
    import os

    from lab.registry import Registry

    if not is_loopback(args.host):
        port = args.port or 6006
        raise LabError(f"TensorBoard has no authentication: it binds to loopback only (got --host {args.host}; "
                       f"reach it from elsewhere through an SSH tunnel: ssh -L {port}:127.0.0.1:{port} HOST)")
    registry = Registry()
    experiments = [registry.experiment(i) for i in args.ids] if args.ids else registry.experiments(limit=10)
    folders = tensorboard_folders(experiments)
    missing = [path for path in folders.values() if "://" not in path and not os.path.isdir(path)]
    if not folders:
        raise LabError("no experiments to show: run one first (`lab run quickstart`)")
    if missing:
        raise LabError(f"experiment folder not found: {missing[0]}")
    logdir_spec = ",".join(f"{name}:{path}" for name, path in folders.items())
    from lab.infra.signals import terminate_like_ctrl_c
    from lab.results import board

    terminate_like_ctrl_c()  # SIGTERM, SIGHUP: TensorBoard is stopped and its port freed, as on Ctrl-C
    return board.serve(logdir_spec, args.host, args.port, list(folders))


def tensorboard_folders(experiments: list[dict]) -> dict[str, str]:
    """{run label: folder} for TensorBoard's --logdir_spec from registry rows (a stranger's text): labels are
    `ID-NAME` with a plain name (else `ID`), folders lie under the storage root and hold no `,` (which would
    start another entry); LabError for a folder that does not."""
    from lab.infra import storage
    from lab.spec.safety import NAME, printable

    folders = {}
    for e in experiments:
        if not e["storage_path"]:
            continue
        label = f"{int(e['id'])}-{e['name']}" if isinstance(e["name"], str) and NAME.fullmatch(e["name"]) else str(int(e["id"]))
        where = storage.recorded(e["storage_path"], f"experiment {e['id']}'s storage folder")
        if "," in where.uri:
            raise LabError(f"experiment {e['id']}'s storage folder {printable(where.uri)} has a ',' "
                           "(TensorBoard would read it as a list): refused")
        folders[label] = where.uri
    return folders


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_up(args: argparse.Namespace) -> int:
    from lab.infra import warm

    if args.cpus is not None and args.cpus < 1 or args.workers is not None and args.workers < 0:
        raise LabError("--cpus must be at least 1 and --workers at least 0")
    warm.check_none_up()
    print("starting a warm local Ray (its workers import TensorFlow and TF-Agents first) ...", flush=True)
    warm.up(num_cpus=args.cpus, pool=args.workers, dashboard=args.dashboard)
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
