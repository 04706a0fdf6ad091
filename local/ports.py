"""Loopback helpers for the local stack: free ports and a quiet moto server."""

import logging
import socket

from moto.server import ThreadedMotoServer


def free_port() -> int:
    """A free TCP port on loopback (the local stack binds nothing else)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_moto_server() -> tuple[ThreadedMotoServer, dict[str, str]]:
    """A moto server (SQS, DynamoDB, Secrets Manager, ...) on loopback, and the environment that points boto3 at it."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per AWS call otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-north-1",
    }
