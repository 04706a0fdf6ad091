"""An HTTP front for StatusCallbackFunction on loopback: what API Gateway does, turned into REST proxy events.

ePROM's simulator, curl and schemathesis talk to it as they would to the deployed CallbackApi, within API
Gateway's limits (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html): a body over 10 MB is
refused with 413, an integration taking over 29 s answers 504 (the function runs on), and a function response
over Lambda's 6 MB answers 502. Lambda takes at most 6 MB of request too
(https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html): the proxy event carries the body as a JSON
string, escaped once more (a form return's formData, JSON in a string, has its quotes escaped twice), and an event
above the limit never reaches the function; API Gateway answers 413 `{"message": "Request Too Long"}`, as observed
on AWS (https://github.com/koki-develop/lgtm-generator/issues/10), and a 413 cannot be given another reply
(https://docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html).

`python -m local.callback_front` prints the largest callback body of each kind that reaches the function
(docs/architecture.md, "Callback endpoint").
"""

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local.lambda_runtime import LambdaContext, ResponseTooLarge, checked_response, response_headers, rest_api_event

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
# Lambda's refusal says "Request must be smaller than 6291456 bytes for the InvokeFunction operation" (6 MiB; its
# responses may have 100 bytes more: lambda_runtime.MAX_RESPONSE_BYTES).
MAX_REQUEST_BYTES = 6_291_456
INTEGRATION_TIMEOUT_SECONDS = 29.0


def event_bytes(event: dict[str, Any]) -> int:
    """An invocation's request as Lambda counts it: the event as JSON, in UTF-8."""
    text = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return len(text.encode("utf-8", errors="surrogatepass"))


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
        assert isinstance(host, str)  # an IPv4 server's address: (host, port)
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

        event = rest_api_event(method, path, headers, body)
        if event_bytes(event) > MAX_REQUEST_BYTES:  # Lambda refuses the invocation: the function never runs
            return gateway_error(413, "Request Too Long")

        def run() -> None:
            with self._invoke_lock:
                context = LambdaContext("StatusCallbackFunction")
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
        response: dict[str, Any] = outcome["response"]
        return response

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


def largest_delivered_body(body_of: Callable[[int], str]) -> int:
    """The largest body `body_of(n)` makes (its UTF-8 bytes) whose event still reaches the function: n grows with
    the body; found by bisection on the event this front builds for a PUT of it."""

    def event_of(n: int) -> int:
        body = body_of(n)
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body.encode()))}
        return event_bytes(rest_api_event("PUT", "/api/PromsFormOrder", headers, body))

    low, high = 0, MAX_REQUEST_BYTES
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if event_of(middle) <= MAX_REQUEST_BYTES else (low, middle - 1)
    return len(body_of(low).encode())


def _form_return(form_data: str) -> str:
    return json.dumps({"apiKey": "k" * 40, "formOrderId": "184738d0-3c39-e611-9c2a-34e6d72e03c7",
                       "formOrderStatus": "Completed", "formData": form_data}, ensure_ascii=False)  # fmt: skip


# What a form return's answers can be made of: formData is JSON in a string, so its quotes are escaped in the body
# and again in the event.
BODY_KINDS: dict[str, Callable[[int], str]] = {
    "only quotes in formData (each escaped twice: the worst case)": lambda n: _form_return('"' * n),
    "answers as ePROM sends them (short fields, Norwegian text)": lambda n: _form_return(
        json.dumps({f"spørsmål{i}": f"svar på spørsmål {i}: ja, æøå" for i in range(n // 30)}, ensure_ascii=False)
    ),
    "formData without quotes or backslashes (the best case)": lambda n: _form_return("a" * n),
}


if __name__ == "__main__":
    for kind, body_of in BODY_KINDS.items():
        print(f"{kind}: {largest_delivered_body(body_of):,} bytes")
