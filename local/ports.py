"""Loopback helpers for the local stack: free ports and a moto server that applies DynamoDB writes one at a time."""

import argparse
import logging
import socket
import threading
from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from local.aws_limits import AwsLimits


def free_port() -> int:
    """A free TCP port on loopback (the local stack binds nothing else)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class DynamoDBOneRequestAtATime:
    """WSGI middleware. moto runs a conditional UpdateItem as read, check, write without a lock, so two writes to
    one new item at the same moment can lose one of them (the placer's write and ePROM's first callback do meet
    like that). DynamoDB applies the writes to an item one after the other; serialising moto's DynamoDB requests
    gives the same guarantee. SQS and Secrets Manager stay concurrent (long polls must not block anything)."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self.lock:
            return list(self.app(environ, start_response))  # the whole answer, before another request runs


class MotoServer:
    """moto's server (as moto.server.ThreadedMotoServer builds it) behind DynamoDBOneRequestAtATime and AWS's limits
    (local/aws_limits.py), on loopback."""

    def __init__(self, port: int | None = None) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per AWS call otherwise
        self.limits = AwsLimits(DynamoDBOneRequestAtATime(DomainDispatcherApplication(create_backend_app)))
        app = self.limits
        self.port = port or free_port()
        self.server: BaseWSGIServer = make_server(
            "127.0.0.1", self.port, app, threaded=True, request_handler=MotoRequestHandler
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> "MotoServer":
        threading.Thread(target=self.server.serve_forever, name="moto", daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def main() -> None:
    """`python -m local.ports --port N`: the same moto server as a process of its own (local/stack.py's
    ServerProcess, for `make bench`)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    MotoServer(parser.parse_args().port).server.serve_forever()


if __name__ == "__main__":
    main()
