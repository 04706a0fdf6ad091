"""Shared fixtures: the local stack as local/stack.py starts it (a moto server over HTTP for AWS, the ePROM
simulator over HTTP, the functions' environment and handlers), and `make serve` in a process of its own.

The handlers read their settings once at import (as on Lambda), so the AWS resources and the simulator live for
the whole session; each test uses its own order references and form order ids, and the DLQ is emptied per test.
"""

import contextlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key
from eprom.models import EpromCallback
from eprom.order_item import ResultPointer
from eprom.order_store import OrderStore
from eprom.pacer import PACE_KEY
from eprom_cli.target import LocalState
from hypothesis import settings
from hypothesis import strategies as st

from buildtools.schemas import outcome_event_errors
from local.eprom_simulator import EpromSimulator, Form, SimulatorConfig, signed_pdf
from local.lambda_runtime import LambdaContext
from local.stack import (  # noqa: F401 - the tests import the stack's names from here too
    API_KEY,
    FORM_ID,
    HANDLER_MODULES,
    LAMBDA_GLOBALS,
    NONEXISTENT_NATIONAL_ID,
    PAPER_FORM_ID,
    STATE_VARIABLES,
    Aws,
    functions_environment,
    handler_module,
    simulator_config,
    start_aws,
)

# What template.yaml's Globals give every function, set before a test module imports a layer module that makes its
# Powertools child logger at import (named after POWERTOOLS_SERVICE_NAME, as on Lambda).
os.environ.update(LAMBDA_GLOBALS)

# CI runs the property tests on a fixed set of examples, so a submission passes or fails on its code, not on a
# draw; a developer's `make test` keeps exploring new examples (and remembers failures in .hypothesis/).
settings.register_profile("ci", derandomize=True, database=None, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

PREVIOUS_API_KEY = "previous-test-api-key"
UNPUBLISHED_FORM_ID = "7d1c2b3a-4e5f-4a6b-9c7d-8e9f0a1b2c3d"
ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
SERVICE = LAMBDA_GLOBALS["POWERTOOLS_SERVICE_NAME"]
# The settings the tests' functions run with, besides the resources and ePROM's address
TEST_SETTINGS = {
    "EPROM_READ_TIMEOUT_SECONDS": "1",  # the simulator's "timeout" fault stalls longer than this
    # The backoff compressed in time through its own settings (30 s .. 900 s deployed)
    "RETRY_BASE_DELAY_SECONDS": "2",
    "RETRY_MAX_DELAY_SECONDS": "4",
    "API_KEY_MIN_REFRESH_SECONDS": "2",  # 10 s deployed; test_key_rotation moves the clock past it
    "SIGNED_DOCUMENT_MAX_BYTES": "5000000",  # the simulator's huge documents need only be larger than this
    "EPROM_REQUESTS_PER_SECOND": "50",  # ePROM's pace (2 deployed): the tests that measure it set their own
    "PRIVACY_CALL_SECONDS": "6",  # how long a privacy get or set keeps trying ePROM (25 deployed)
}
DEFAULT_SIMULATOR = simulator_config(forms=simulator_config().forms | {UNPUBLISHED_FORM_ID: Form(published=False)})

# Each test's kind is its folder: unit (pure code), integration (one part against moto and/or the simulator over
# HTTP), e2e (the whole local stack, or the build tools). `make check` picks the fast kinds by these markers.
KINDS = ("unit", "integration", "e2e")


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests = Path(__file__).resolve().parent
    for item in items:
        kind = item.path.relative_to(tests).parts[0]
        if kind not in KINDS:
            raise pytest.UsageError(f"{item.path}: a test lives in tests/unit, tests/integration or tests/e2e")
        item.add_marker(kind)


@pytest.fixture(scope="session")
def aws_stack() -> Iterator[Aws]:
    """A moto server on loopback with template.yaml's resources. Each function's calls are decided by its role in the
    transformed template (local/iam.py)."""
    aws = start_aws(previous_api_keys=(PREVIOUS_API_KEY,))
    aws.enforce_roles()
    yield aws
    aws.stop()


@pytest.fixture(scope="session")
def simulator_session(aws_stack: Aws) -> Iterator[EpromSimulator]:
    with EpromSimulator(replace(DEFAULT_SIMULATOR)) as simulator:
        yield simulator


@pytest.fixture(scope="session")
def aws(aws_stack: Aws, simulator_session: EpromSimulator) -> dict[str, str]:
    """The functions' environment, set in this process: the handlers read it at their import (handler_module)."""
    environment = functions_environment(aws_stack, simulator_session.base_url, TEST_SETTINGS)
    os.environ.update(environment)
    return environment


# `make run` / `make serve` as the Makefile runs them: the layer and the functions' code on the path
MAKE_RUN_ENV = os.environ | {
    "PYTHONPATH": os.pathsep.join(
        ["layers/shared", *(f"functions/{module.split('.')[0]}" for module in HANDLER_MODULES.values())]
    )
}


@contextlib.contextmanager
def serving(state_file: Path, *args: str) -> Iterator[dict[str, Any]]:
    """`make serve --no-samples ARGS` in a process of its own while the block runs, and its state as `eprom --local`
    reads it (EPROM_LOCAL_STATE points there meanwhile)."""
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "local.run", "--serve", "--no-samples", "--state-file", str(state_file), *args],
        cwd=ROOT, env=MAKE_RUN_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not state_file.exists():
            assert process.poll() is None and time.monotonic() < deadline, "make serve did not start"
            time.sleep(0.2)
        os.environ["EPROM_LOCAL_STATE"] = str(state_file)
        yield LocalState.read(state_file).model_dump()
    finally:
        os.environ.pop("EPROM_LOCAL_STATE", None)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


@pytest.fixture
def eprom(simulator_session: EpromSimulator, aws: dict[str, str]) -> Iterator[EpromSimulator]:
    """The session's simulator with default behaviour; a test may change `eprom.config` freely. A fresh ePROM starts
    with a fresh pace (eprom/pacer.py): what one test's 429s slowed down does not hold up the next."""
    simulator_session.reset(fresh_simulator_config())
    reset_pace(aws)
    yield simulator_session
    simulator_session.reset(fresh_simulator_config())  # no faults left behind for tests without this fixture
    reset_pace(aws)


def fresh_simulator_config() -> SimulatorConfig:
    """The default behaviour, with dictionaries of its own that a test may change."""
    return replace(DEFAULT_SIMULATOR, forms=dict(DEFAULT_SIMULATOR.forms),
                   pvk_definitions=dict(DEFAULT_SIMULATOR.pvk_definitions))  # fmt: skip


def reset_pace(aws: dict[str, str]) -> None:
    boto3.client("dynamodb").delete_item(TableName=aws["IDEMPOTENCY_TABLE"], Key={"id": {"S": PACE_KEY}})


@pytest.fixture
def signed_order(aws: dict[str, str], eprom: EpromSimulator) -> dict[str, str]:
    """An order whose form came back signed: its item exists, and ePROM has the PDF."""
    form_order_id, signed_form_id = str(uuid.uuid4()), str(uuid.uuid4())
    form_return = {"formOrderId": form_order_id, "formOrderStatus": "Completed", "formData": "{}",
                   "signedFormId": signed_form_id}  # fmt: skip
    answers = ResultPointer(key=f"answers/{form_order_id}.json", version_id="v1", sha256="0" * 64, bytes=2)
    OrderStore(aws["FORM_ORDERS_TABLE"]).apply_callback(EpromCallback.model_validate(form_return), answers=answers)
    eprom.documents[signed_form_id] = (time.monotonic(), signed_pdf(signed_form_id, 50_000))
    return {"formOrderId": form_order_id, "signedFormId": signed_form_id}


@pytest.fixture
def dead_letters(aws: dict[str, str]) -> "DeadLetters":
    queue = DeadLetters(aws["DEAD_LETTER_QUEUE_URL"])
    queue.messages()  # drain what earlier tests left (PurgeQueue is limited to once a minute)
    return queue


@dataclass
class DeadLetters:
    url: str

    def messages(self) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs")
        found = []
        while True:
            batch = sqs.receive_message(
                QueueUrl=self.url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
            ).get("Messages", [])
            if not batch:
                return found
            found += batch
            for message in batch:
                sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def outcome_events(aws: dict[str, str]) -> "OutcomeEvents":
    queue = OutcomeEvents(aws["OUTCOME_QUEUE_URL"])
    queue.received()  # drain what earlier tests left
    return queue


@dataclass
class OutcomeEvents:
    """OutcomeQueue, read as upstream reads it: EventBridge envelopes."""

    url: str

    def received(self) -> list[dict[str, Any]]:
        envelopes = [json.loads(message["Body"]) for message in DeadLetters(self.url).messages()]
        assert [error for envelope in envelopes for error in outcome_event_errors(envelope)] == []
        return [{"detailType": envelope["detail-type"], "source": envelope["source"], **envelope["detail"]}
                for envelope in envelopes]  # fmt: skip


@pytest.fixture
def fetcher(aws: dict[str, str]) -> Any:
    return handler_module("FetchSignedDocumentFunction")


@pytest.fixture
def publisher(aws: dict[str, str]) -> Any:
    return handler_module("PublishOutcomesFunction")


@pytest.fixture
def orders_table(aws: dict[str, str]) -> Any:
    return boto3.resource("dynamodb").Table(aws["FORM_ORDERS_TABLE"])


@pytest.fixture
def placer(aws: dict[str, str]) -> Any:
    return handler_module("PlaceOrderFunction")


@pytest.fixture
def callback_app(aws: dict[str, str]) -> Any:
    return handler_module("StatusCallbackFunction")


@pytest.fixture
def lambda_context() -> LambdaContext:
    """One invocation's context, with the placer's timeout (template.yaml); a test that invokes again after a long
    first invocation makes a fresh one, as Lambda does."""
    return LambdaContext("test-function", timeout_seconds=60)


def unique_reference(prefix: str = "test") -> str:
    """A fresh orderReference: the prefix and a GUID, which is never read as holding a national id."""
    return f"{prefix}-{uuid.uuid4()}"


def order_message(**overrides: Any) -> dict[str, Any]:
    """A valid order with a fresh orderReference; overrides replace fields (None removes one)."""
    reference = overrides.pop("orderReference", unique_reference())
    body = {
        "orderReference": reference,
        "formId": FORM_ID,
        "nationalId": "26073941651",
        "expiryDate": "2099-12-31T23:59:59+01:00",
        "metadata": {"age": 76, "orderReference": reference},  # lets the simulator count orders per reference
        "distributionRule": "Basic",
    } | overrides
    return {key: value for key, value in body.items() if value is not None}


# Anything upstream could put on OrderQueue (or an operator into a file for `eprom orders send`): any JSON, nesting
# deeper than any parser recurses, an order whose fields hold anything.
DEEP = 50_000
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
DEPTHS = st.sampled_from([2, 2_000, DEEP]) | st.integers(1, DEEP)  # hypothesis favours small numbers: deep ones too
NESTED = st.builds(lambda depth, pair: pair[0] * depth + pair[1] * depth, DEPTHS, st.sampled_from(["[]", "{}"]))
ANY_INPUT = st.one_of(
    JSON_VALUES.map(json.dumps),
    NESTED,
    st.builds(lambda depth: '{"a": ' * depth + "1" + "}" * depth, DEPTHS),
    st.builds(
        lambda metadata, other: json.dumps(order_message(metadata=metadata, **other)),
        JSON_VALUES | NESTED,
        st.dictionaries(
            st.sampled_from(["formId", "nationalId", "expiryDate", "distributionRule", "physicalAddress"]),
            JSON_VALUES,
            max_size=2,
        ),
    ),
    st.text(),
)


def sqs_event(*bodies: str | dict[str, Any], sent_seconds_ago: float = 0, receive_count: int = 1) -> dict[str, Any]:
    """events/place-order-sqs.json with one record per body, sent now (or `sent_seconds_ago`)."""
    template = json.loads((EVENTS / "place-order-sqs.json").read_text())["Records"][0]
    records = []
    for body in bodies:
        record = json.loads(json.dumps(template))
        record["messageId"] = str(uuid.uuid4())
        record["body"] = body if isinstance(body, str) else json.dumps(body)
        record["attributes"]["SentTimestamp"] = str(int((time.time() - sent_seconds_ago) * 1000))
        record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
        records.append(record)
    return {"Records": records}


def wait_until_indexed(order_reference: str, table_name: str, timeout: float = 30) -> None:
    """Until the orderReference index shows the reference's item: what an item written long ago is (the local stack's
    GSI lags behind writes, as DynamoDB's does: local/aws_limits.py)."""
    table = boto3.resource("dynamodb").Table(table_name)
    deadline = time.monotonic() + timeout
    while not table.query(
        IndexName="orderReference-index", KeyConditionExpression=Key("orderReference").eq(order_reference)
    )["Items"]:
        assert time.monotonic() < deadline, f"{order_reference} not in the index after {timeout} s"
        time.sleep(0.1)


def failed_ids(response: dict[str, Any]) -> set[str]:
    return {failure["itemIdentifier"] for failure in response["batchItemFailures"]}


class FakeClock:
    """A monotonic clock a test moves on instead of sleeping, for code given a `clock`. It runs with real time, only
    ahead by what was advanced, so it never goes back behind a time.monotonic() it takes over from."""

    def __init__(self) -> None:
        self._advanced = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self._advanced

    def advance(self, seconds: float) -> None:
        self._advanced += seconds


class CapturedOutput:
    """Everything the Powertools Logger wrote, plus stdout (where Metrics prints EMF)."""

    def __init__(self, capfd: pytest.CaptureFixture[str]) -> None:
        self._capfd = capfd
        self._log = io.StringIO()
        self._handlers = [h for h in logging.getLogger(SERVICE).handlers if isinstance(h, logging.StreamHandler)]
        self._streams = [h.setStream(self._log) for h in self._handlers]

    def restore(self) -> None:
        for handler, stream in zip(self._handlers, self._streams, strict=True):
            handler.setStream(stream)

    def text(self) -> str:
        out, err = self._capfd.readouterr()
        return self._log.getvalue() + out + err

    def log_records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self._log.getvalue().splitlines() if line.startswith("{")]


@pytest.fixture
def captured_output(placer: Any, callback_app: Any, capfd: pytest.CaptureFixture[str]) -> Iterator[CapturedOutput]:
    captured = CapturedOutput(capfd)
    yield captured
    captured.restore()


# --- messages to citizens: letters, SMS and e-mail (SendMessageFunction) --------------------------------------------


@pytest.fixture
def sender(aws: dict[str, str]) -> Any:
    return handler_module("SendMessageFunction")


@pytest.fixture
def message_dead_letters(aws: dict[str, str]) -> DeadLetters:
    queue = DeadLetters(aws["MESSAGE_DEAD_LETTER_QUEUE_URL"])
    queue.messages()  # drain what earlier tests left
    return queue


@pytest.fixture
def messages_table(aws: dict[str, str]) -> Any:
    return boto3.resource("dynamodb").Table(aws["MESSAGES_TABLE"])


def put_document(aws: dict[str, str], *, size: int = 20_000, content: bytes | None = None) -> str:
    """A PDF (or `content`) in MessageDocumentsBucket under a fresh key of documents/."""
    key = f"documents/{uuid.uuid4()}.pdf"
    body = content if content is not None else signed_pdf(key, size)
    boto3.client("s3").put_object(Bucket=aws["MESSAGE_DOCUMENTS_BUCKET"], Key=key, Body=body)
    return key


def letter_message(aws: dict[str, str], **overrides: Any) -> dict[str, Any]:
    """A valid letter with a fresh messageReference, its title the reference (the simulator finds it by its title),
    and one PDF just put into the bucket; overrides replace fields (None removes one)."""
    reference = overrides.pop("messageReference", unique_reference("letter"))
    body = {
        "messageReference": reference,
        "kind": "letter",
        "nationalId": "26073941651",
        "senderInfo": {"organisationName": "Testregisteret", "organisationNr": "987654321"},
        "messageInfo": {"title": reference, "description": "Resultater fra undersøkelsen", "merknad": "Testregisteret"},
        "documents": [{"key": put_document(aws), "title": "Brev", "main": True}],
        "notificationPriorityList": ["Helsenorge", "DigitalMailbox", "PhysicalMailbox"],
    } | overrides
    return {key: value for key, value in body.items() if value is not None}


def sms_message(**overrides: Any) -> dict[str, Any]:
    reference = overrides.pop("messageReference", unique_reference("sms"))
    body = {"messageReference": reference, "kind": "sms", "text": reference, "phoneNumber": "+4791234567"} | overrides
    return {key: value for key, value in body.items() if value is not None}


def email_message(**overrides: Any) -> dict[str, Any]:
    reference = overrides.pop("messageReference", unique_reference("email"))
    body = {"messageReference": reference, "kind": "email", "title": reference, "text": "Husk skjemaet",
            "emailAddress": "ola.nordmann@example.no"} | overrides  # fmt: skip
    return {key: value for key, value in body.items() if value is not None}
