"""An HTTP front for StatusCallbackFunction on loopback: what API Gateway does, turned into REST proxy events.

ePROM's simulator, curl and schemathesis talk to it as they would to the deployed CallbackApi.
"""

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local.lambda_runtime import LambdaContext, response_headers, rest_api_event

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class CallbackFront:
    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        self._handler = handler
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
        with self._invoke_lock:
            return self._handler(rest_api_event(method, path, headers, body), LambdaContext("StatusCallbackFunction"))

    def _request_handler(self) -> type[BaseHTTPRequestHandler]:
        front = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _proxy(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", errors="surrogateescape") if length else None
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
