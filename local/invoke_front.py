"""Lambda's Invoke API on loopback for the functions upstream invokes synchronously (PrivacySettingsFunction), so
that boto3's Lambda client (`eprom --local privacy`, upstream's code in the tests) calls them as it would on AWS.

Within Lambda's limits (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html): a request payload
over 6 MB is refused with 413 RequestTooLargeException, and a response over 6 MB becomes the function error
Function.ResponseSizeTooLarge; a handler that raises answers 200 with X-Amz-Function-Error: Unhandled, as Lambda's
synchronous invocation does (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html).
"""

import json
import threading
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local.aws_resources import load_template
from local.lambda_runtime import LambdaContext, ResponseTooLarge, checked_response

Handler = Callable[[Any, Any], Any]
MAX_REQUEST_PAYLOAD_BYTES = 6_291_456
_PATH = "/2015-03-31/functions/"


class InvokeFront:
    def __init__(self, handlers: dict[str, Handler], host: str = "127.0.0.1", port: int = 0) -> None:
        """`handlers`: function name (its logical id, as the local stack names it) -> handler."""
        self._handlers = handlers
        resources = load_template()["Resources"]
        self._timeouts = {name: float(resources[name]["Properties"]["Timeout"]) for name in handlers}
        self._server = ThreadingHTTPServer((host, port), self._request_handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="invoke-front", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        assert isinstance(host, str)  # an IPv4 server's address: (host, port)
        return f"http://{host}:{port}"

    def start(self) -> "InvokeFront":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "InvokeFront":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def invoke(self, name: str, payload: bytes) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body of Lambda's answer to a RequestResponse invocation."""
        function = name.rsplit(":", 1)[-1] if name.startswith("arn:") else name  # a name, or its ARN
        if function not in self._handlers:
            return _error(404, "ResourceNotFoundException", f"Function not found: {name}")
        if len(payload) > MAX_REQUEST_PAYLOAD_BYTES:
            message = f"Request must be smaller than {MAX_REQUEST_PAYLOAD_BYTES} bytes for the InvokeFunction operation"
            return _error(413, "RequestTooLargeException", message)
        try:
            event = json.loads(payload) if payload else None
        except ValueError:
            return _error(400, "InvalidRequestContentException", "Could not parse request body into json")
        context = LambdaContext(function, timeout_seconds=self._timeouts[function])
        try:
            response = checked_response(self._handlers[function](event, context))
        except ResponseTooLarge as error:
            return _function_error("Function.ResponseSizeTooLarge", str(error))
        except Exception as error:  # Lambda reports what the runtime caught, as the function's error
            return _function_error(type(error).__name__, str(error))
        return 200, {"X-Amz-Executed-Version": "$LATEST"}, json.dumps(response).encode()

    def _request_handler(self) -> type[BaseHTTPRequestHandler]:
        front = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                payload = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = urllib.parse.unquote(self.path.split("?")[0])
                if path.startswith(_PATH) and path.endswith("/invocations"):
                    status, headers, body = front.invoke(path.removeprefix(_PATH).removesuffix("/invocations"), payload)
                else:
                    status, headers, body = _error(404, "UnknownOperationException", "only Invoke is served here")
                self.send_response(status)
                for name, value in (headers | {"Content-Type": "application/json"}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return RequestHandler


def _error(status: int, error_type: str, message: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"x-amzn-ErrorType": error_type}, json.dumps({"Type": "User", "message": message}).encode()


def _function_error(error_type: str, message: str) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
    return 200, {"X-Amz-Function-Error": "Unhandled", "X-Amz-Executed-Version": "$LATEST"}, body
