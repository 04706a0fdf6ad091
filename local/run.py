"""`make run`: the whole flow on this machine, from real parts, on loopback only.

A moto server (SQS, DynamoDB, S3, EventBridge, Secrets Manager) with template.yaml's resources, the ePROM
simulator, an HTTP front that turns requests into REST API proxy events for StatusCallbackFunction, pollers that
feed PlaceOrderFunction, FetchSignedDocumentFunction and SendMessageFunction from their queues and
PublishOutcomesFunction from the tables' streams like Lambda's event sources, and a stand-in for upstream reading
OutcomeQueue. It sends the sample orders from events/orders (and --orders N generated ones) and the sample letters,
SMS and e-mails from events/messages (their PDFs uploaded first), shows progress, prints every order's and message's
final status, what was stored and the events upstream got, every refusal with its reason, and stops everything
(Ctrl-C too).
Each order's form is returned and its signed PDF stored unless --form-return says otherwise.
--serve keeps it running for your own orders and callbacks.
"""

import argparse
import contextlib
import hashlib
import itertools
import json
import os
import random
import signal
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import NoneType
from typing import TYPE_CHECKING, Any, get_args

import boto3
import requests
from eprom.message_item import MessageItem
from eprom.message_store import MessageStore
from eprom.order_item import OrderItem, ResultPointer
from eprom.order_store import OrderStore
from eprom_cli.target import LOCAL_STATE, LocalState, LocalTarget

from local import iam
from local.callback_front import CallbackFront
from local.eprom_simulator import EpromSimulator, SimulatorConfig, signed_pdf
from local.invoke_front import InvokeFront
from local.sqs_poller import SqsPoller
from local.stack import (
    API_KEY,
    FORM_ID,
    REGION,
    RESERVATION_PVK_ID,
    STATE_VARIABLES,
    VALID_IDS,
    functions_environment,
    import_handlers,
    simulator_config,
    start_aws,
)
from local.stream_poller import StreamPoller
from local.upstream import Upstream

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import GetObjectRequestTypeDef
    from mypy_boto3_sqs.type_defs import MessageTypeDef

ROOT = Path(__file__).resolve().parent.parent
KEPT_FUNCTION_LOGS = 20  # besides this run's
# make run's privacy settings: the person whose reservation the registry sets, and the one who reserves on Helsenorge
PRIVACY_PERSON, HELSENORGE_PERSON = VALID_IDS[0], VALID_IDS[1]
INVALID_CHANGES: list[dict[str, Any]] = [
    {"nationalId": "15499923810"},  # H-nummer
    {"nationalId": "17048522719"},  # bad control digits
    {"distribusjonRule": "Basic"},  # a typo
    {"mustBeSigned": True, "distributionRule": "NoDistribution"},
    {"metadata": "{not json"},
    {"expiryDate": "2020-01-01T00:00:00Z"},
]


@dataclass
class SentOrder:
    order_reference: str
    body: str
    expect: str  # "placed" or "refused"
    deliveries: int = 1
    intended: str | None = None  # a sample's intended final state (its file says it by its name)


# events/orders/*.json: what each sample is meant to show (a file not named here ends as the form return says)
SAMPLE_INTENDED = {"patient-unreachable.json": "Error"}


@dataclass
class SentMessage:
    message_reference: str
    kind: str
    body: str
    expect: str  # "sent" or "refused"


def option(
    default: Any,
    help: str | None = None,
    *,
    choices: list[str] | None = None,
    simulator: str | None = None,
    env: tuple[str, ...] = (),
    flag: str | None = None,
) -> Any:
    """A field of RunOptions and its command-line option (`flag`, else --field-name): `simulator` names the
    SimulatorConfig field it sets, `env` the functions' environment variables."""
    return field(
        default=default,
        metadata={"help": help, "choices": choices, "simulator": simulator, "env": env, "flag": flag},
    )


@dataclass
class RunOptions:
    orders: int = option(0, "generated orders besides the samples")
    serve: bool = option(False, "keep running for your own orders and callbacks")
    samples: bool = option(True, "skip events/orders/*.json", flag="--no-samples")
    invalid_rate: float = option(0.05)
    duplicate_rate: float = option(0.10, "orders delivered twice")
    dialect: str = option("names", "ePROM's enum wire dialect", choices=["names", "numbers"], simulator="dialect")
    form_return: str | None = option(
        None,
        "what ePROM sends after Ordered: Completed (answers stored, and the PDF of a signed form), Expired, or none "
        "(orders stop at Ordered). Default: Completed; none with --serve, where you or `eprom --local verify` fill "
        "the forms",
        choices=["Completed", "Expired", "none"],
    )
    latency: float = option(0.05, "ePROM's answer time, seconds", simulator="latency_seconds")
    rate_500: float = option(0.0, simulator="rate_500")
    rate_429: float = option(0.0, simulator="rate_429")
    rate_timeout: float = option(0.0, simulator="rate_timeout")
    rate_drop: float = option(0.0, "connections dropped without an answer", simulator="rate_drop")
    rate_lost_answer: float = option(0.0, "order created, then a gateway 504", simulator="rate_lost_answer")
    down_for: float = option(0.0, "ePROM answers 503 for this many seconds", simulator="down_for_seconds")
    down_retry_after: int | None = option(None, "Retry-After on those 503s", simulator="down_retry_after")
    rate_limit: float | None = option(
        None, "ePROM takes this many orders/s, 429 + Retry-After above", simulator="rate_limit_per_second"
    )
    signed_rate: float = option(0.0, "generated orders with mustBeSigned")
    document_ready_after: float = option(0.0, "signed PDFs 404 until then", simulator="document_ready_after_seconds")
    rate_document_500: float = option(0.0, "signed-PDF requests that get 500", simulator="rate_document_500")
    read_timeout: float = option(1.0, "the placer's EPROM_READ_TIMEOUT_SECONDS", env=("EPROM_READ_TIMEOUT_SECONDS",))
    pace: float = option(10.0, "ePROM's pace, orders/s (EPROM_REQUESTS_PER_SECOND: 2 deployed)",
                         env=("EPROM_REQUESTS_PER_SECOND",))  # fmt: skip
    order_concurrency: int | None = option(
        None, "PlaceOrderFunction invocations at once (the SQS event's MaximumConcurrency: OrderMaximumConcurrency)"
    )
    # The production backoff (30 s .. 15 min in the template; the signed-document fetcher's 5 min .. 12 h),
    # compressed in time by its own settings
    retry_base_delay: int = option(
        1,
        "RETRY_BASE_DELAY_SECONDS (30 deployed)",
        env=("RETRY_BASE_DELAY_SECONDS", "DOCUMENT_RETRY_BASE_DELAY_SECONDS"),
    )
    retry_max_delay: int = option(
        4, "RETRY_MAX_DELAY_SECONDS (900 deployed)", env=("RETRY_MAX_DELAY_SECONDS", "DOCUMENT_RETRY_MAX_DELAY_SECONDS")
    )
    retry_window_hours: float = option(24.0, "ORDER_RETRY_WINDOW_HOURS", env=("ORDER_RETRY_WINDOW_HOURS",))
    ambiguous_policy: str = option("park", choices=["park", "retry"], env=("AMBIGUOUS_ORDER_POLICY",))
    duplicate_callbacks: float = option(0.0, simulator="rate_duplicate_callback")
    out_of_order_callbacks: float = option(0.0, simulator="rate_out_of_order_callback")
    max_faults_per_order: int | None = option(3, simulator="max_faults_per_order")
    seed: int = option(1, simulator="seed")
    settle_timeout: float = option(120.0)
    report: Path | None = option(None, "write the final state as JSON (used by the tests)")
    state_file: Path = option(LOCAL_STATE, "with --serve: where `eprom --local` finds this stack")

    def simulator(self) -> SimulatorConfig:
        changes = {
            option.metadata["simulator"]: getattr(self, option.name)
            for option in fields(self)
            if option.metadata["simulator"]
        }
        form_return = self.form_return or ("none" if self.serve else "Completed")
        return simulator_config(
            **changes,
            form_return=None if form_return == "none" else form_return,
            timeout_seconds=self.read_timeout + 0.5,  # the simulator's "timeouts" stall longer than the placer waits
        )

    def function_settings(self) -> dict[str, str]:
        return {name: str(getattr(self, option.name)) for option in fields(self) for name in option.metadata["env"]} | {
            "ALLOW_SYNTHETIC_NATIONAL_IDS": "true",  # a test stage
            "ALLOW_TEST_MODE_ORDERS": "true",
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }


@dataclass
class LocalStack:
    options: RunOptions
    sent: list[SentOrder] = field(default_factory=list)
    sent_messages: list[SentMessage] = field(default_factory=list)
    first_sent_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    privacy: dict[str, Any] = field(default_factory=dict)  # what show_privacy_settings did

    def __enter__(self) -> "LocalStack":
        self._stack: list[Any] = []
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self) -> None:
        self.aws = start_aws()
        self._stack.append(self.aws)
        self.resources = self.aws.resources
        self.iam = self.aws.enforce_roles()  # each function under its own role
        self.simulator = EpromSimulator(self.options.simulator())
        handlers = import_handlers(
            functions_environment(self.aws, self.simulator.base_url, self.options.function_settings())
        )
        self.front = CallbackFront(handlers.status_callback).start()
        self._stack.append(self.front)
        self.simulator.config.callback_base_url = self.front.base_url
        self.simulator.start()
        self._stack.append(self.simulator)
        self.poller = SqsPoller(
            self.resources["ORDER_QUEUE_URL"], handlers.place_order, maximum_concurrency=self.options.order_concurrency
        ).start()
        self._stack.append(self.poller)
        self.stream_poller = StreamPoller(
            self.resources["FORM_ORDERS_TABLE"],
            handlers.publish_outcomes,
            function="PublishOutcomesFunction",
            on_failure_queue_url=self.resources["PUBLISH_OUTCOMES_FAILURE_QUEUE_URL"],
        ).start()
        self._stack.append(self.stream_poller)
        self.document_poller = SqsPoller(
            self.resources["SIGNED_DOCUMENT_QUEUE_URL"],
            handlers.fetch_signed_document,
            function="FetchSignedDocumentFunction",
        ).start()
        self._stack.append(self.document_poller)
        self.message_poller = SqsPoller(
            self.resources["MESSAGE_QUEUE_URL"], handlers.send_message, function="SendMessageFunction"
        ).start()
        self._stack.append(self.message_poller)
        self.messages_stream_poller = StreamPoller(
            self.resources["MESSAGES_TABLE"],
            handlers.publish_outcomes,
            function="PublishOutcomesFunction",
            on_failure_queue_url=self.resources["PUBLISH_OUTCOMES_FAILURE_QUEUE_URL"],
            event="MessagesStream",
        ).start()
        self._stack.append(self.messages_stream_poller)
        self.upstream = Upstream(self.resources["OUTCOME_QUEUE_URL"]).start()
        self._stack.append(self.upstream)
        self.invoke_front = InvokeFront({"PrivacySettingsFunction": handlers.privacy_settings}).start()
        self._stack.append(self.invoke_front)
        self.sqs, self.dynamodb, self.s3 = boto3.client("sqs"), boto3.client("dynamodb"), boto3.client("s3")

    def __exit__(self, *_: object) -> None:
        for part in reversed(self._stack):  # poller first, moto last
            part.stop()
        self._stack.clear()

    @property
    def ports(self) -> list[int]:
        urls = (self.simulator.base_url, self.front.base_url, self.aws.url, self.invoke_front.base_url)
        return [int(url.rsplit(":", 1)[1]) for url in urls]

    def send(self, order: SentOrder) -> None:
        if not self.sent:
            self.first_sent_at = datetime.now(UTC)
        for _ in range(order.deliveries):
            with iam.as_upstream("OrderProducerPolicy"):
                self.sqs.send_message(QueueUrl=self.resources["ORDER_QUEUE_URL"], MessageBody=order.body)
        self.sent.append(order)

    def send_message(self, message: SentMessage, upload: bool) -> None:
        """As upstream sends one: a letter's PDFs into MessageDocumentsBucket (`upload`), then the message."""
        with iam.as_upstream("MessageProducerPolicy"):
            for document in json.loads(message.body).get("documents", []) if upload else []:
                self.s3.put_object(Bucket=self.resources["MESSAGE_DOCUMENTS_BUCKET"], Key=document["key"],
                                   Body=signed_pdf(document["key"], 40_000))  # fmt: skip
            self.sqs.send_message(QueueUrl=self.resources["MESSAGE_QUEUE_URL"], MessageBody=message.body)
        self.sent_messages.append(message)

    def queue_depth(self, url_key: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.resources[url_key],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def settled(self) -> bool:
        """Nothing left to do, and the streams had time to carry the last writes (a fetcher's, a callback's) to the
        publisher: their pollers poll every 0.2 s, a loaded machine's cycle takes longer."""
        now = time.monotonic()
        return (
            self.queue_depth("ORDER_QUEUE_URL") == 0
            and not self.poller.busy
            and now - self.poller.last_activity > 1.5
            and not self.stream_poller.busy
            and now - self.stream_poller.last_activity > 1.5
            and self.queue_depth("SIGNED_DOCUMENT_QUEUE_URL") == 0
            and not self.document_poller.busy
            and now - self.document_poller.last_activity > 1.5
            and self.simulator.pending_callbacks() == 0
            and now - self.simulator.last_acknowledged_at > 1.5
            and self.queue_depth("MESSAGE_QUEUE_URL") == 0
            and not self.message_poller.busy
            and now - self.message_poller.last_activity > 1.5
            and not self.messages_stream_poller.busy
            and now - self.messages_stream_poller.last_activity > 1.5
        )

    def items(self) -> list[OrderItem]:
        return list(OrderStore(self.resources["FORM_ORDERS_TABLE"], client=self.dynamodb).all_items())

    def stored_object(self, pointer: ResultPointer) -> bytes:
        """The version of a results object an item points at, checked against the sha256 the item holds."""
        request: GetObjectRequestTypeDef = {"Bucket": self.resources["FORM_RESULTS_BUCKET"], "Key": pointer.key}
        if pointer.version_id:  # boto3 refuses a VersionId of None
            request["VersionId"] = pointer.version_id
        content = self.s3.get_object(**request)["Body"].read()
        if hashlib.sha256(content).hexdigest() != pointer.sha256:
            raise AssertionError(f"{pointer.key}: content differs from the sha256 in the item")
        return content

    def dead_letters(self, url_key: str = "DEAD_LETTER_QUEUE_URL") -> list[dict[str, Any]]:
        found = []
        while batch := self.sqs.receive_message(
            QueueUrl=self.resources[url_key],
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
            VisibilityTimeout=60,
        ).get("Messages", []):
            found += batch

        def attribute(message: "MessageTypeDef", name: str) -> str | None:
            value = message.get("MessageAttributes", {}).get(name)
            return value.get("StringValue") if value else None

        return [
            {
                "body": message["Body"],
                "reason": attribute(message, "rejectionReason"),
                "rejection_class": attribute(message, "rejectionClass"),
                "receives": int(message["Attributes"]["ApproximateReceiveCount"]),
            }
            for message in found
        ]

    def progress(self) -> str:
        callbacks = self.simulator.callbacks
        acknowledged = sum(1 for callback in callbacks if callback.acknowledged)
        return (
            f"sent {sum(o.deliveries for o in self.sent)} messages ({len(self.sent)} orders) | "
            f"ePROM orders {len(self.simulator.orders)} | faults {sum(self.simulator.faults.values())} | "
            f"callbacks {acknowledged}/{len(callbacks)} acknowledged | "
            f"queue {self.queue_depth('ORDER_QUEUE_URL')} | DLQ {self.queue_depth('DEAD_LETTER_QUEUE_URL')} | "
            f"invocations {self.poller.invocations}"
        )

    def report(self, elapsed: float) -> dict[str, Any]:
        items = self.items()
        events = self.upstream.events()  # what upstream keeps: one per eventId
        messages = MessageStore(self.resources["MESSAGES_TABLE"], client=self.dynamodb)
        last_write = max(
            (datetime.fromisoformat(item.updated_at) for item in items if item.updated_at), default=self.first_sent_at
        )
        return {
            "elapsed_seconds": round(elapsed, 2),
            # from the first message sent to the last write to the orders table
            "flow_seconds": round((last_write - self.first_sent_at).total_seconds(), 3),
            "sent": [order.__dict__ for order in self.sent],
            "items": [item.as_attributes() for item in items],
            "answers": {
                item.form_order_id: json.loads(self.stored_object(item.answers)) for item in items if item.answers
            },
            "signed_documents": {
                item.form_order_id: len(self.stored_object(item.signed_document))
                for item in items
                if item.signed_document
            },
            "dead_letters": self.dead_letters(),
            "signed_document_dead_letters": self.queue_depth("SIGNED_DOCUMENT_DEAD_LETTER_QUEUE_URL"),
            "order_queue_depth": self.queue_depth("ORDER_QUEUE_URL"),
            "events": [event for event in events if not event["detailType"].startswith("Message")],
            "messages": [item.as_attributes() for item in messages.all_items() if not item.is_link],
            "message_dead_letters": self.dead_letters("MESSAGE_DEAD_LETTER_QUEUE_URL"),
            "message_events": [event for event in events if event["detailType"].startswith("Message")],
            "sent_messages": [message.__dict__ for message in self.sent_messages],
            "events_received": self.upstream.received,  # every delivery, repeats included
            "publish_failures": self.queue_depth("PUBLISH_OUTCOMES_FAILURE_QUEUE_URL"),
            "denied_calls": [call.__dict__ for call in self.iam.calls if not call.allowed],
            "callers": sorted({call.principal for call in self.iam.calls}),  # whose calls IAM decided
            "simulator": {
                "orders_per_reference": dict(self.simulator.orders_per_reference),
                "orders": len(self.simulator.orders),
                "order_posts": self.simulator.order_posts,
                "idle_seconds": round(self.simulator.idle_seconds, 2),
                "faults": dict(self.simulator.faults),
                "callbacks": len(self.simulator.callbacks),
                "callbacks_pending": self.simulator.pending_callbacks(),
            },
            "ports": self.ports,
            "pid": os.getpid(),
            "privacy": self.privacy,
        }

    # --- privacy settings (PVK) -------------------------------------------------------------------------------------

    def show_privacy_settings(self) -> None:
        """A registry sets a person's reservation and reads it back, invoking PrivacySettingsFunction as upstream
        does; another person reserves on Helsenorge, which ePROM forwards (its event is awaited with the rest)."""
        client = boto3.client("lambda", endpoint_url=self.invoke_front.base_url)

        def invoke(request: dict[str, Any]) -> Any:
            with iam.as_upstream("PrivacySettingsClientPolicy"):
                answer = client.invoke(FunctionName="PrivacySettingsFunction", Payload=json.dumps(request))
            return json.loads(answer["Payload"].read())

        person = {"nationalId": PRIVACY_PERSON, "type": "Reservasjon", "pvkId": RESERVATION_PVK_ID}
        self.privacy["set"] = invoke({"operation": "set", "status": "Aktiv"} | person)
        self.privacy["read_back"] = invoke({"operation": "get"} | person)
        change = {"nationalId": HELSENORGE_PERSON, "pvkId": RESERVATION_PVK_ID, "status": "RES"}
        requests.post(f"{self.simulator.base_url}/_simulator/privacy-change", json=change, timeout=10)
        self.privacy["helsenorge_change"] = change["status"]


def sample_orders(form_return: str = "Completed") -> list[SentOrder]:
    orders = []
    for path in sorted((ROOT / "events" / "orders").glob("*.json")):
        body = json.loads(path.read_text())
        expect = "refused" if path.name.startswith("refused-") else "placed"
        intended = "refused" if expect == "refused" else SAMPLE_INTENDED.get(path.name, form_return)
        orders.append(SentOrder(body["orderReference"], json.dumps(body), expect, intended=intended))
    return orders


def sample_messages() -> list[SentMessage]:
    messages = []
    for path in sorted((ROOT / "events" / "messages").glob("*.json")):
        body = json.loads(path.read_text())
        expect = "refused" if path.name.startswith("refused-") else "sent"
        messages.append(SentMessage(body["messageReference"], body["kind"], json.dumps(body), expect))
    return messages


def generated_orders(count: int, options: RunOptions) -> list[SentOrder]:
    draw = random.Random(options.seed)
    invalid = itertools.cycle(INVALID_CHANGES)
    orders = []
    for number in range(count):
        # a letter before the random hex: its digits must never join the number into an id (the reference rule)
        reference = f"generated-{number:05d}-x{uuid.uuid4().hex[:6]}"
        body: dict[str, Any] = {
            "orderReference": reference,
            "formId": FORM_ID,
            "nationalId": draw.choice(VALID_IDS),
            "expiryDate": "2099-12-31T23:59:59+01:00",
            "metadata": {"orderReference": reference, "age": draw.randint(18, 95)},
            "distributionRule": draw.choice(["Basic", "AllowUnsecure", "NoDistribution", 6]),
        }
        if draw.random() < options.signed_rate and body["distributionRule"] != "NoDistribution":
            body["mustBeSigned"] = True
        expect = "placed"
        if draw.random() < options.invalid_rate:
            body |= next(invalid)
            expect = "refused"
        deliveries = 2 if draw.random() < options.duplicate_rate else 1
        orders.append(SentOrder(reference, json.dumps(body), expect, deliveries))
    return orders


_EVENT_LABELS = {"FormOrderPlaced": "placed", "FormReturned": "answers", "SignedDocumentStored": "signed PDF",
                 "FormOrderRefused": "refused"}  # fmt: skip
# Within one status and one instant (a return's status, its answers and its PDF may share occurredAt to the
# microsecond), the order in which they happen: the printed line must not depend on the bus's delivery order.
_SAME_INSTANT_ORDER = {"FormOrderStatusChanged": 0, "FormReturned": 1, "SignedDocumentStored": 2}


def final_table(sent: list[SentOrder], report: dict[str, Any]) -> str:
    items = {item.order_reference: item for item in map(OrderItem.model_validate, report["items"])}
    refused = {}
    for dead in report["dead_letters"]:
        try:
            reference = json.loads(dead["body"]).get("orderReference")
        except (ValueError, AttributeError):
            reference = None
        refused[reference] = (
            f"{dead['rejection_class']}: {dead['reason']}"
            if dead["reason"]
            else f"moved by the redrive policy after {dead['receives']} receives"
        )
    # by formOrderId, as a consumer correlates them: a status that beat the placer's write has no orderReference yet
    events: dict[str | None, list[str]] = {}
    order_events = [event for event in report["events"] if "statusRank" in event]

    def happened(event: dict[str, Any]) -> tuple[int, str, int]:
        return event["statusRank"], event["occurredAt"], _SAME_INSTANT_ORDER.get(event["detailType"], 0)

    for event in sorted(order_events, key=happened):
        label = _EVENT_LABELS.get(event["detailType"]) or event["status"]
        events.setdefault(event["formOrderId"] or event["orderReference"], []).append(label)
    width = max((len(order.order_reference) for order in sent), default=10)
    lines = [f"{'orderReference':<{width}}  {'outcome':<8}  status / reason", "-" * (width + 60)]
    intended: list[SentOrder] = []
    for order in sent:
        item = items.get(order.order_reference)
        if item:
            pointers = (("answers", item.answers), ("signed PDF", item.signed_document))
            stored = [name for name, pointer in pointers if pointer]
            detail = f"{item.status or '':<10} formOrderId {item.form_order_id}"
            detail += f"  stored: {', '.join(stored) or '-'}"
            outcome = "placed"
        elif order.order_reference in refused:
            outcome, detail = "refused", refused[order.order_reference]
        else:
            outcome, detail = "pending", "(still on the queue or in flight)"
        if order.intended:
            reached = outcome if outcome == "refused" else (item.status if item else outcome)
            detail += "  (as intended)" if reached == order.intended else f"  (NOT as intended: {order.intended})"
            intended += [order] if reached == order.intended else []
        lines.append(f"{order.order_reference:<{width}}  {outcome:<8}  {detail}")
        received = events.get(item.form_order_id if item else order.order_reference, ["-"])
        lines.append(f"{'':<{width}}  {'':<8}  events upstream got: {' > '.join(received)}")
    samples = [order for order in sent if order.intended]
    if samples:
        lines.append(f"\n{len(intended)} of {len(samples)} sample orders ended as intended (refused-*: in the DLQ with "
                     "their reason; patient-unreachable: Error; the others: as the form return says)")  # fmt: skip
    placed = sum(1 for order in sent if order.order_reference in items)
    lines.append(
        f"\n{placed} placed, {len(refused)} refused, of {len(sent)} orders; upstream received "
        f"{len(report['events_received'])} events ({len(report['events']) + len(report['message_events'])} "
        "distinct eventIds)"
    )
    return "\n".join(lines + privacy_lines(report))


def privacy_lines(report: dict[str, Any]) -> list[str]:
    """What the privacy settings came to (LocalStack.show_privacy_settings), national ids masked."""
    shown = report["privacy"]
    if not shown:
        return []
    setting = shown["read_back"]
    lines = [
        "\nprivacy settings (PrivacySettingsFunction, invoked as upstream does; national ids masked):",
        f"  set Reservasjon of *********** in {RESERVATION_PVK_ID}: {json.dumps(shown['set'])}",
        f"  read back: {setting.get('name')}: {setting.get('status')} "
        f"(sequence number {setting.get('sequenceNumber')})",
    ]
    changed = [event for event in report["events"] if event["detailType"] == "PrivacySettingChanged"]
    lines += [
        f"  a person reserved on Helsenorge ({shown['helsenorge_change']}): upstream got {event['detailType']} "
        f"{event['eventId']} ({event['status']}), the change stored as {event['change']['key']}"
        for event in changed
    ] or ["  a person reserved on Helsenorge: no event reached upstream"]
    return lines


_MESSAGE_EVENT_LABELS = {"MessageAccepted": "accepted", "MessageDelivered": "delivered",
                         "MessageNotDelivered": "not delivered", "MessageRefused": "refused"}  # fmt: skip


def messages_table(sent: list[SentMessage], report: dict[str, Any]) -> str:
    """Each letter, SMS and e-mail: its status (a letter's after ePROM's callback) or why it was refused."""
    items = {item.message_reference: item for item in map(MessageItem.model_validate, report["messages"])}
    refused = {}
    for dead in report["message_dead_letters"]:
        try:
            reference = json.loads(dead["body"]).get("messageReference")
        except (ValueError, AttributeError):
            reference = None
        refused[reference] = f"{dead['rejection_class']}: {dead['reason']}"
    events: dict[str, list[str]] = {}
    for event in sorted(report["message_events"], key=lambda event: (event["statusRank"], event["occurredAt"])):
        events.setdefault(event["messageReference"], []).append(_MESSAGE_EVENT_LABELS[event["detailType"]])
    width = max((len(message.message_reference) for message in sent), default=16)
    lines = [f"{'messageReference':<{width}}  {'kind':<6}  status / reason", "-" * (width + 60)]
    for message in sent:
        item = items.get(message.message_reference)
        if item and item.status:
            detail = f"{item.status:<12} channel {item.notification_channel or '-'}"
            detail += f"  messageToCitizenId {item.message_to_citizen_id}" if item.message_to_citizen_id else ""
        elif message.message_reference in refused:
            detail = f"refused: {refused[message.message_reference]}"
        else:
            detail = f"{item.state if item else 'pending'} (still on the queue, in flight or parked)"
        lines.append(f"{message.message_reference:<{width}}  {message.kind:<6}  {detail}")
        received = " > ".join(events.get(message.message_reference, ["-"]))
        lines.append(f"{'':<{width}}  {'':<6}  events upstream got: {received}")
    return "\n".join(lines)


def local_state(stack: LocalStack) -> LocalState:
    """What `eprom --local` needs to find this stack (written with --serve, removed when it stops)."""
    # by field name, as data: pydantic checks each value against its field
    resources: dict[str, Any] = {name: stack.resources[variable] for name, variable in STATE_VARIABLES.items()}
    return LocalState(
        region=REGION,
        target=LocalTarget(
            endpoint_url=stack.aws.url,
            api_base_url=stack.front.base_url,
            eprom_simulator_url=stack.simulator.base_url,
            lambda_endpoint_url=stack.invoke_front.base_url,
            privacy_settings_function="PrivacySettingsFunction",
            **resources,
        ),
    )


def serve_instructions(stack: LocalStack) -> str:
    endpoint = stack.aws.url
    return f"""
The local stack is running (Ctrl-C stops it and prints the final table).
  moto (AWS):      {endpoint}
  OrderQueue:      {stack.resources["ORDER_QUEUE_URL"]}
  ePROM simulator: {stack.simulator.base_url}   (ApiKey {API_KEY})
  callback API:    {stack.front.base_url}/api/PromsFormOrder

Operate it as you would a deployed stack (`.venv/bin/eprom --help`), e.g.:
  .venv/bin/eprom --local orders send events/orders/basic.json
  .venv/bin/eprom --local orders show sample-basic-1
  .venv/bin/eprom --local dead-letters list
  .venv/bin/eprom --local smoke --form-id {FORM_ID}
  .venv/bin/eprom --local verify --form-id {FORM_ID} --report-dir verification   (the simulator plays the person)
Call the callback endpoint as ePROM does (then `.venv/bin/eprom --local orders orphans` lists it):
  curl -s -X PUT {stack.front.base_url}/api/PromsFormOrder -H 'Content-Type: application/json' \\
      -d '{{"apiKey": "{API_KEY}", "formOrderId": "{uuid.uuid4()}", "formOrderStatus": "Ordered"}}'
Privacy settings (PVK): a reservation set and read back, a definition's residents, a change on Helsenorge:
  .venv/bin/eprom --local privacy set {PRIVACY_PERSON} --pvk-id {RESERVATION_PVK_ID} --status Aktiv
  .venv/bin/eprom --local privacy get {PRIVACY_PERSON} --pvk-id {RESERVATION_PVK_ID}
  .venv/bin/eprom --local privacy list --pvk-id {RESERVATION_PVK_ID}
  curl -s -X POST {stack.simulator.base_url}/_simulator/privacy-change \\
      -d '{{"nationalId": "{HELSENORGE_PERSON}", "pvkId": "{RESERVATION_PVK_ID}", "status": "RES"}}'
"""


def run(options: RunOptions) -> int:
    """The functions log (JSON lines) and print metrics to stdout, as on Lambda; here that goes to a file of this
    run's own, and the console shows progress and the final table."""
    function_log = ROOT / ".local-run" / f"functions-{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.log"
    function_log.parent.mkdir(exist_ok=True)
    remove_old_function_logs(function_log.parent)
    console = sys.stdout
    # Powertools warns when an invocation flushes no metrics (on Lambda into the function's log); here the console
    # shows progress only. The tests filter the same warning (pyproject.toml).
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    with function_log.open("w") as log, contextlib.redirect_stdout(log):
        return _run(options, function_log, partial(print, file=console, flush=True))


def remove_old_function_logs(directory: Path, keep: int = KEPT_FUNCTION_LOGS) -> None:
    """Every run (and every test that starts `make serve`) writes its own log; the newest are kept to read, and any
    written to in the last day (a `make serve` still running)."""
    a_day_ago = time.time() - 86400
    for old in sorted(directory.glob("functions-*.log"))[:-keep]:  # the names sort by the run's start
        with contextlib.suppress(FileNotFoundError):  # another run removed it first
            if old.stat().st_mtime < a_day_ago:
                old.unlink()


def _run(options: RunOptions, function_log: Path, say: Callable[..., None]) -> int:
    started = time.monotonic()
    say(f"function logs and metrics: {function_log.relative_to(ROOT)}")
    with LocalStack(options) as stack:
        try:  # Ctrl-C at any point from here stops the stack cleanly and still prints where everything stands
            samples = sample_orders(options.simulator().form_return or "Ordered") if options.samples else []
            for order in samples + generated_orders(options.orders, options):
                stack.send(order)
            for message in sample_messages() if options.samples else []:
                stack.send_message(message, upload=message.expect == "sent")
            if options.samples and not options.serve:
                stack.show_privacy_settings()
            if options.serve:
                local_state(stack).write(options.state_file)
                say(serve_instructions(stack))
            wait_until_settled(stack, options, say, deadline=started + options.settle_timeout)
        except KeyboardInterrupt:
            say("\nstopping ...")
        finally:
            if options.serve:
                options.state_file.unlink(missing_ok=True)
        settled = stack.settled()
        report = stack.report(time.monotonic() - started) | {"function_log": str(function_log)}
        say(final_table(stack.sent, report))
        if stack.sent_messages:
            say("\n" + messages_table(stack.sent_messages, report))
        if options.report:
            options.report.write_text(json.dumps(report, default=str, indent=1))
    say(f"stopped after {time.monotonic() - started:.1f} s; everything the stack started is shut down")
    return 0 if settled or options.serve else 1


def wait_until_settled(stack: LocalStack, options: RunOptions, say: Callable[..., None], deadline: float) -> None:
    """Show progress until every message is placed or refused and every callback acknowledged (or forever with
    --serve)."""
    last = ""
    while options.serve or not stack.settled():
        if not options.serve and time.monotonic() > deadline:
            say(f"not settled after {options.settle_timeout:.0f} s")
            return
        line = stack.progress()
        if line != last:
            say(line)
            last = line
        time.sleep(1)


def parse_args(argv: list[str]) -> RunOptions:
    parser = argparse.ArgumentParser(prog="make run ARGS=", description=__doc__.split("\n\n")[0])
    for option in fields(RunOptions):
        flag, help_text = option.metadata["flag"] or f"--{option.name.replace('_', '-')}", option.metadata["help"]
        if option.type is bool:
            action = "store_false" if option.default else "store_true"
            parser.add_argument(flag, dest=option.name, action=action, help=help_text)
            continue
        value_type = next((kind for kind in get_args(option.type) if kind is not NoneType), option.type)
        parser.add_argument(flag, dest=option.name, type=value_type, default=option.default,
                            choices=option.metadata["choices"], help=help_text)  # fmt: skip
    return RunOptions(**vars(parser.parse_args(argv)))


def _stop(*_: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the stack as Ctrl-C does (a background `make serve` ignores SIGINT)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _stop)
    sys.exit(run(parse_args(sys.argv[1:])))
