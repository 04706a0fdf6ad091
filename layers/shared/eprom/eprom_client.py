"""ePROM's order API (POST {base}/api/v2/formorder), with every answer classified.

Placed: ePROM created an order. Refused: ePROM will not create it, so retrying is pointless (400, or the
all-zero id). Transient: try again later (timeouts, connection errors, 401/403/404/408/429, 5xx, anything else).
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import requests
from pydantic import ValidationError
from requests.adapters import HTTPAdapter

from eprom.models import NO_ORDER_ID, EpromOrderRequest, EpromOrderResponse, describe_validation_error

NO_ORDER_CREATED = "ePROM created no order (it answered with the all-zero id: the national id does not exist)"
_NATIONAL_ID_LIKE = re.compile(r"(?<![0-9A-Za-z-])\d{11}(?![0-9A-Za-z-])")  # 11 digits standing alone, not in a GUID
_MAX_REASON_LENGTH = 500


@dataclass(frozen=True)
class Placed:
    response: EpromOrderResponse


@dataclass(frozen=True)
class Refused:
    reason: str


@dataclass(frozen=True)
class Transient:
    reason: str


type PlacementResult = Placed | Refused | Transient


class EpromClient:
    def __init__(
        self,
        base_url: str,
        api_key: Callable[[], str],
        *,
        connect_timeout: float,
        read_timeout: float,
        max_connections: int = 10,
    ) -> None:
        self._url = base_url.rstrip("/") + "/api/v2/formorder"
        self._api_key = api_key
        self._timeout = (connect_timeout, read_timeout)
        # One session for the life of the Lambda environment: connections and TLS sessions are reused.
        self._session = requests.Session()
        self._session.mount(self._url, HTTPAdapter(pool_connections=1, pool_maxsize=max_connections))

    def place(self, order: EpromOrderRequest) -> PlacementResult:
        headers = {
            # ePROM wants the raw key after "Basic", not base64 of user:password.
            "Authorization": f"Basic {self._api_key()}",
            "Content-Type": "application/json;charset=utf-8",
            "Accept": "application/json",
        }
        body = order.model_dump_json(by_alias=True).encode()
        try:
            answer = self._session.post(self._url, data=body, headers=headers, timeout=self._timeout)
        except requests.Timeout:
            return Transient("ePROM did not answer in time")
        except requests.ConnectionError:
            return Transient("could not connect to ePROM")
        except requests.RequestException as error:
            return Transient(f"request to ePROM failed ({type(error).__name__})")

        if answer.status_code == 400:
            return Refused(f"ePROM refused the order: {_error_message(answer)}")
        if answer.status_code != 200:
            return Transient(f"ePROM answered HTTP {answer.status_code}")
        try:
            response = EpromOrderResponse.model_validate_json(answer.content)
        except ValidationError as error:
            # ePROM said 200, so an order may exist: retrying could order twice. Park it for a person.
            return Refused(f"ePROM answered 200 with a body we cannot read ({describe_validation_error(error)})")
        if response.id == NO_ORDER_ID:
            return Refused(NO_ORDER_CREATED)
        return Placed(response)


def _error_message(answer: requests.Response) -> str:
    """ePROM's 400 text, from whichever shape it came in, without anything that looks like a national id."""
    try:
        content = answer.json()
    except ValueError:
        content = answer.text
    if isinstance(content, dict):
        errors = content.get("errors")
        if isinstance(errors, dict):
            content = "; ".join(f"{field}: {' '.join(map(str, msgs))}" for field, msgs in errors.items())
        else:
            content = content.get("message") or content.get("Message") or content.get("title") or json.dumps(content)
    text = _NATIONAL_ID_LIKE.sub("[redacted]", str(content).strip()) or "(no message)"
    return text[:_MAX_REASON_LENGTH]
