"""What a host without the cluster token gets from each listener: `python -m cluster.probe HOST:PORT ...`.

Run on the harness's `probe` host (cluster/multihost.py). Prints one JSON object, "HOST:PORT" -> verdict:

    closed        no TCP connection (nothing listens on that address, or a filter drops it)
    denied        HTTP 401/403, gRPC UNAUTHENTICATED, an S3 request with a made-up key refused, or a
                  PostgreSQL login that wants a password
    answered ...  an HTTP answer other than 401/403, or a gRPC call that ran: open to anyone who reaches it
    unknown ...   a connection is accepted, but the port speaks neither HTTP nor a Ray gRPC service probed here

Every request is bounded (a few seconds each, one pass); only harmless Ray methods are called (reads, and a
Pull naming no object), each with an empty request.
"""
from __future__ import annotations

import json
import socket
import sys
import urllib.error
import urllib.request

TIMEOUT_S = 3.0
# harmless methods of the services a Ray node serves: GCS, raylet, object manager, workers, agents, client server
GRPC_METHODS = [
    "/ray.rpc.NodeInfoGcsService/GetAllNodeInfo",
    "/ray.rpc.NodeManagerService/GetSystemConfig",
    "/ray.rpc.ObjectManagerService/Pull",  # with no object named: nothing to send
    "/ray.rpc.CoreWorkerService/NumPendingTasks",
    "/ray.rpc.ReporterService/HealthCheck",
    "/ray.rpc.LogService/ListLogs",
    "/ray.rpc.RayletDriver/ClusterInfo",
]


def verdict(host: str, port: int) -> str:
    try:
        socket.create_connection((host, port), timeout=TIMEOUT_S).close()
    except OSError:
        return "closed"
    http = _http(host, port)
    if http is not None:
        return _s3(host, port) or http if http.startswith("answered HTTP") else http
    grpc = _grpc(host, port)
    return _postgres(host, port) or grpc if grpc.startswith("unknown") else grpc


def _http(host: str, port: int) -> str | None:
    """The verdict of a plain GET /metrics, or None when the port does not speak HTTP/1."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=TIMEOUT_S) as response:
            return f"answered HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return "denied" if exc.code in (401, 403) else f"answered HTTP {exc.code}"
    except Exception:  # noqa: BLE001 - not HTTP/1 (a gRPC server closes or sends a binary frame)
        return None


def _grpc(host: str, port: int) -> str:
    import grpc

    with grpc.insecure_channel(f"{host}:{port}") as channel:
        for method in GRPC_METHODS:
            call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
            try:
                call(b"", timeout=TIMEOUT_S)
                return f"answered gRPC {method}"
            except grpc.RpcError as exc:
                code = exc.code()
            if code == grpc.StatusCode.UNAUTHENTICATED:
                return "denied"
            if code in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                continue  # not this service here (or not gRPC at all)
            return f"answered gRPC {method}: {code.name}"
    return "unknown (accepts connections; no HTTP, no probed gRPC service)"


def _s3(host: str, port: int) -> str | None:
    """The verdict of an S3 ListBuckets with a made-up key, or None when the port does not speak S3."""
    import boto3
    import botocore.config
    import botocore.exceptions

    client = boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name="us-east-1",
                          aws_access_key_id="probe", aws_secret_access_key="probe",  # noqa: S106 - a made-up key
                          config=botocore.config.Config(connect_timeout=TIMEOUT_S, read_timeout=TIMEOUT_S,
                                                        retries={"max_attempts": 1}))
    try:
        client.list_buckets()
        return "answered S3 ListBuckets"
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {}).get("Code", "")
        return "denied" if error in ("InvalidAccessKeyId", "AccessDenied", "SignatureDoesNotMatch") else None
    except botocore.exceptions.BotoCoreError:
        return None


def _postgres(host: str, port: int) -> str | None:
    """The verdict of a PostgreSQL login as `lab` without a password, or None when it is not PostgreSQL."""
    import psycopg

    try:
        psycopg.connect(host=host, port=port, user="lab", dbname="lab", connect_timeout=int(TIMEOUT_S)).close()
        return "answered PostgreSQL (no password asked)"
    except psycopg.OperationalError as exc:
        return "denied" if "password" in str(exc) else None


def main(targets: list[str]) -> int:
    out = {}
    for target in targets:
        host, _, port = target.rpartition(":")
        out[target] = verdict(host, int(port))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
