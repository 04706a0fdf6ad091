"""One way to start the local stack, for `make run` / `make serve` (local/run.py), the tests, the benchmarks and the
build check: a moto server with template.yaml's resources, the ePROM simulator, the functions' environment, and
their handlers imported with it.

    aws = start_aws()                                    # moto on loopback, boto3 pointed at it, the resources
    with EpromSimulator(simulator_config()) as eprom:
        handlers = import_handlers(functions_environment(aws, eprom.base_url))
"""

import contextlib
import importlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

import requests

from local import iam
from local.aws_resources import create_resources
from local.eprom_simulator import Form, PvkDefinition, SimulatorConfig
from local.ports import MotoServer, free_port

API_KEY = "local-test-api-key"  # the key in events/callback-*.json
FORM_ID = "0b8d5c9e-3f4a-4c1e-9a57-2d6f0e1b7c31"
PAPER_FORM_ID = "5a3f9e12-7c44-4d0b-8e21-9b6c3d2a1f08"
NONEXISTENT_NATIONAL_ID = "24108108017"  # ePROM answers with the all-zero id
UNREACHABLE_NATIONAL_ID = "20076833487"  # ePROM reports Error/PatientUnreachable for it
VALID_IDS = ["26073941651", "01039494104", "17048522718", "03116231939", "29060884348", "55019049891", "26670271527"]
REGION = "eu-north-1"
# Privacy settings (PVK): the definitions registered on the local ordering system
RESERVATION_PVK_ID = "b3cda307-154c-4af4-87d3-30567c931924"  # the id in Hemit's example of the replication callback
CONSENT_PVK_ID = "5f0e8d1c-2b3a-4c5d-8e9f-0a1b2c3d4e5f"

# Each function's handler module, as template.yaml's Handler names it (the code directories are on the path).
HANDLER_MODULES = {
    "PlaceOrderFunction": "place_order.app",
    "StatusCallbackFunction": "status_callback.app",
    "PublishOutcomesFunction": "publish_outcomes.app",
    "FetchSignedDocumentFunction": "fetch_signed_document.app",
    "SendMessageFunction": "send_message.app",
    "PrivacySettingsFunction": "privacy_settings.app",
}
# What template.yaml's Globals give every function besides the resources.
LAMBDA_GLOBALS = {"POWERTOOLS_SERVICE_NAME": "eprom-integration", "POWERTOOLS_METRICS_NAMESPACE": "EpromIntegration"}

# `eprom --local`'s state (cli/eprom_cli/target.py) field -> the environment variable create_resources() sets
STATE_VARIABLES = {
    "order_queue_url": "ORDER_QUEUE_URL",
    "dead_letter_queue_url": "DEAD_LETTER_QUEUE_URL",
    "signed_document_queue_url": "SIGNED_DOCUMENT_QUEUE_URL",
    "signed_document_dead_letter_queue_url": "SIGNED_DOCUMENT_DEAD_LETTER_QUEUE_URL",
    "table": "FORM_ORDERS_TABLE",
    "bucket": "FORM_RESULTS_BUCKET",
    "secret_id": "EPROM_API_KEY_SECRET_ID",
    "outcome_bus_name": "OUTCOME_BUS_NAME",
    "outcome_queue_url": "OUTCOME_QUEUE_URL",
    "outcome_delivery_dead_letter_queue_url": "OUTCOME_DELIVERY_DEAD_LETTER_QUEUE_URL",
    "idempotency_table": "IDEMPOTENCY_TABLE",
    "message_queue_url": "MESSAGE_QUEUE_URL",
    "message_dead_letter_queue_url": "MESSAGE_DEAD_LETTER_QUEUE_URL",
    "messages_table": "MESSAGES_TABLE",
    "message_documents_bucket": "MESSAGE_DOCUMENTS_BUCKET",
}


class ServerProcess:
    """A local server as a process of its own (`python -m MODULE ... --port N`): for measurements, so that it does
    not share the measured code's GIL, as DynamoDB and ePROM share nothing with a function on Lambda."""

    def __init__(self, module: str, *args: str) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", module, *args, "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            self._wait_until_listening()
        except BaseException:
            self.stop()
            raise

    def _wait_until_listening(self) -> None:
        for _ in range(100):
            with contextlib.suppress(requests.ConnectionError):
                requests.get(self.url, timeout=1)
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.url} did not start")

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)


def aws_environment(endpoint_url: str) -> dict[str, str]:
    """What points boto3 (ours and the functions') at the moto server."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }


@dataclass
class Aws:
    """A moto server with template.yaml's resources; `resources` is the environment create_resources() returns."""

    server: MotoServer | ServerProcess
    resources: dict[str, str]

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def environment(self) -> dict[str, str]:
        return aws_environment(self.url) | self.resources

    def enforce_roles(self) -> iam.LocalIam:
        """Each function's calls decided by its role in the transformed template (local/iam.py)."""
        return iam.enforce(self.resources, REGION, self.url)

    def stop(self) -> None:
        self.server.stop()


def start_aws(api_key: str = API_KEY, *, previous_api_keys: tuple[str, ...] = (), own_process: bool = False) -> Aws:
    """A moto server on loopback (in this process, or in one of its own), this process's boto3 pointed at it, and
    template.yaml's resources created on it, the secret holding `api_key`."""
    server = ServerProcess("local.ports") if own_process else MotoServer().start()
    try:
        os.environ.update(aws_environment(server.url))
        return Aws(server, create_resources(api_key, previous_api_keys=previous_api_keys))
    except BaseException:
        server.stop()
        raise


def simulator_config(**changes: Any) -> SimulatorConfig:
    """The ePROM simulator the sample orders and the tests expect: our ApiKey, the sample forms, and the national ids
    ePROM treats specially; `changes` set any other SimulatorConfig field."""
    return replace(
        SimulatorConfig(
            api_key=API_KEY,
            forms={FORM_ID: Form(), PAPER_FORM_ID: Form(paper_enabled=True)},
            nonexistent_national_ids={NONEXISTENT_NATIONAL_ID},
            unreachable_national_ids={UNREACHABLE_NATIONAL_ID},
            pvk_definitions={
                RESERVATION_PVK_ID: PvkDefinition("Reservasjon mot registrering", type=0),
                CONSENT_PVK_ID: PvkDefinition("Samtykke til registrering", type=1),
            },
        ),
        **changes,
    )


def functions_environment(aws: Aws, eprom_url: str, settings: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment the functions read: the resources, ePROM's address and the Globals, plus `settings`: the
    template's parameters a caller sets for its purpose (a compressed backoff, a test stage's switches, ...)."""
    return aws.environment | {"EPROM_API_BASE_URL": eprom_url} | LAMBDA_GLOBALS | dict(settings or {})


def handler_module(function: str) -> ModuleType:
    """The handler module of `function` (a logical id). It reads its settings at import, as on Lambda: import it once
    the environment is set (a second import in the same process is the same module, with the same settings)."""
    return importlib.import_module(HANDLER_MODULES[function])


Handler = Callable[[dict[str, Any], Any], Any]


@dataclass(frozen=True)
class Handlers:
    place_order: Handler
    status_callback: Handler
    publish_outcomes: Handler
    fetch_signed_document: Handler
    send_message: Handler
    privacy_settings: Handler


def import_handlers(environment: Mapping[str, str]) -> Handlers:
    """Set `environment` in this process and import the handlers with it."""
    os.environ.update(environment)
    return Handlers(*(handler_module(function).lambda_handler for function in HANDLER_MODULES))
