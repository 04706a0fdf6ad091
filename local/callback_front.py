"""An HTTP front for StatusCallbackFunction on loopback: what API Gateway does, turned into REST proxy events.

ePROM's simulator, curl and schemathesis talk to it as they would to the deployed CallbackApi, within API
Gateway's limits (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html): a body over 10 MB is
refused with 413, an integration taking over 29 s answers 504 (the function runs on), and a function response
over Lambda's 6 MB answers 502.
"""

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local.lambda_runtime import LambdaContext, ResponseTooLarge, checked_response, response_headers, rest_api_event

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
INTEGRATION_TIMEOUT_SECONDS = 29.0


def gateway_error(status: int, message: str) -> dict[str, Any]:
    body = json.dumps({"message": message})
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": body}


class CallbackFront:
    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        self._handler = handler
        self.integration_timeout_seconds = INTEGRATION_TIMEOUT_SECONDS
        # One invocation at a time, as one Lambda environment would run them.
        self._invoke_lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._request_handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="callback-front", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "CallbackFront":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "CallbackFront":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def invoke(self, method: str, path: str, headers: dict[str, str], body: str | None) -> dict[str, Any]:
        outcome: dict[str, Any] = {}

        def run() -> None:
            with self._invoke_lock:
                event, context = rest_api_event(method, path, headers, body), LambdaContext("StatusCallbackFunction")
                try:
                    outcome["response"] = checked_response(self._handler(event, context))
                except ResponseTooLarge:
                    outcome["response"] = gateway_error(502, "Internal server error")
                except Exception as error:  # re-raised below, in the request's thread
                    outcome["error"] = error

        invocation = threading.Thread(target=run, name="callback-invocation", daemon=True)
        invocation.start()
        invocation.join(self.integration_timeout_seconds)
        if invocation.is_alive():
            return gateway_error(504, "Endpoint request timed out")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["response"]

    def _request_handler(self) -> type[BaseHTTPRequestHandler]:
        front = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _proxy(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", errors="surrogateescape") if length else None
                if length > MAX_PAYLOAD_BYTES:
                    response = gateway_error(413, "Request Too Long")
                else:
                    response = front.invoke(self.command, self.path.split("?")[0], dict(self.headers.items()), body)
                data = (response.get("body") or "").encode("utf-8", errors="surrogateescape")
                self.send_response(int(response["statusCode"]))
                for name, value in response_headers(response).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def __getattr__(self, name: str) -> Any:
                # Every method (do_PUT, do_TRACE, do_QUERY, ...) goes to the function, as API Gateway's proxy does.
                if name.startswith("do_"):
                    return self._proxy
                raise AttributeError(name)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return RequestHandler
