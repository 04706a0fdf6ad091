"""`make run`: the whole flow on this machine, from real parts, on loopback only.

A moto server (SQS, DynamoDB, S3, EventBridge, Secrets Manager) with template.yaml's resources, the ePROM
simulator, an HTTP front that turns requests into REST API proxy events for StatusCallbackFunction, pollers that
feed PlaceOrderFunction and FetchSignedDocumentFunction from their queues and PublishOutcomesFunction from the
table's stream like Lambda's event sources, and a stand-in for upstream reading OutcomeQueue. It sends the sample
orders from events/orders (and --orders N generated ones), shows progress, prints every order's final status,
what was stored and the events upstream got, every refusal with its reason, and stops everything (Ctrl-C too).
--serve keeps it running for your own orders and callbacks.
"""

import argparse
import contextlib
import hashlib
import importlib
import itertools
import json
import os
import random
import signal
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import boto3
from eprom.order_item import OrderItem, ResultPointer
from eprom.order_store import OrderStore

from local import iam
from local.aws_resources import create_resources
from local.callback_front import CallbackFront
from local.eprom_simulator import EpromSimulator, Form, SimulatorConfig
from local.ports import start_moto_server
from local.sqs_poller import SqsPoller
from local.stream_poller import StreamPoller
from local.upstream import Upstream

ROOT = Path(__file__).resolve().parent.parent
FUNCTION_LOG = ROOT / ".local-run" / "functions.log"
API_KEY = "local-test-api-key"  # the key in events/callback-*.json
FORM_ID = "0b8d5c9e-3f4a-4c1e-9a57-2d6f0e1b7c31"
PAPER_FORM_ID = "5a3f9e12-7c44-4d0b-8e21-9b6c3d2a1f08"
NONEXISTENT_NATIONAL_ID = "24108108017"  # ePROM answers with the all-zero id
UNREACHABLE_NATIONAL_ID = "20076833487"  # ePROM reports Error/PatientUnreachable for it
VALID_IDS = ["26073941651", "01039494104", "17048522718", "03116231939", "29060884348", "55019049891", "26670271527"]
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


@dataclass
class RunOptions:
    orders: int = 0
    invalid_rate: float = 0.05
    duplicate_rate: float = 0.10
    serve: bool = False
    samples: bool = True
    dialect: str = "names"
    form_return: str | None = None
    latency: float = 0.05
    rate_500: float = 0.0
    rate_429: float = 0.0
    rate_timeout: float = 0.0
    rate_drop: float = 0.0
    rate_lost_answer: float = 0.0
    down_for: float = 0.0
    down_retry_after: int | None = None
    rate_limit: float | None = None
    retry_base_delay: int = 1
    retry_max_delay: int = 4
    retry_window_hours: float = 24.0
    ambiguous_policy: str = "park"
    read_timeout: float = 1.0
    signed_rate: float = 0.0
    document_ready_after: float = 0.0
    rate_document_500: float = 0.0
    duplicate_callbacks: float = 0.0
    out_of_order_callbacks: float = 0.0
    max_faults_per_order: int | None = 3
    seed: int = 1
    settle_timeout: float = 120.0
    report: Path | None = None
    state_file: Path = ROOT / ".local-run" / "stack.json"  # where --serve tells `eprom --local` about itself


@dataclass
class LocalStack:
    options: RunOptions
    sent: list[SentOrder] = field(default_factory=list)
    first_sent_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __enter__(self) -> "LocalStack":
        self._stack: list[Any] = []
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self) -> None:
        options = self.options
        self.moto, aws_env = start_moto_server()
        self._stack.append(self.moto)
        os.environ.update(aws_env)
        self.resources = create_resources(API_KEY)
        self.iam = iam.enforce(self.resources, os.environ["AWS_DEFAULT_REGION"], self.moto.url)  # functions: own roles
        self.simulator = EpromSimulator(
            SimulatorConfig(
                api_key=API_KEY,
                forms={FORM_ID: Form(), PAPER_FORM_ID: Form(paper_enabled=True)},
                nonexistent_national_ids={NONEXISTENT_NATIONAL_ID},
                unreachable_national_ids={UNREACHABLE_NATIONAL_ID},
                latency_seconds=options.latency,
                rate_500=options.rate_500,
                rate_429=options.rate_429,
                rate_timeout=options.rate_timeout,
                rate_drop=options.rate_drop,
                rate_lost_answer=options.rate_lost_answer,
                down_for_seconds=options.down_for,
                down_retry_after=options.down_retry_after,
                rate_limit_per_second=options.rate_limit,
                document_ready_after_seconds=options.document_ready_after,
                rate_document_500=options.rate_document_500,
                timeout_seconds=options.read_timeout + 0.5,
                max_faults_per_order=options.max_faults_per_order,
                dialect=options.dialect,
                form_return=options.form_return,
                rate_duplicate_callback=options.duplicate_callbacks,
                rate_out_of_order_callback=options.out_of_order_callbacks,
                seed=options.seed,
            )
        )
        os.environ.update(
            self.resources
            | {
                "EPROM_API_BASE_URL": self.simulator.base_url,
                "ALLOW_SYNTHETIC_NATIONAL_IDS": "true",  # a test stage
                "EPROM_READ_TIMEOUT_SECONDS": str(options.read_timeout),  # the simulator's "timeouts" stall longer
                # The production backoff, compressed in time by its own settings (30 s .. 15 min in the template)
                "RETRY_BASE_DELAY_SECONDS": str(options.retry_base_delay),
                "RETRY_MAX_DELAY_SECONDS": str(options.retry_max_delay),
                "ORDER_RETRY_WINDOW_HOURS": str(options.retry_window_hours),
                "AMBIGUOUS_ORDER_POLICY": options.ambiguous_policy,
                "ALLOW_TEST_MODE_ORDERS": "true",  # a test stage
                # The signed-document fetcher's backoff, compressed the same way (5 min .. 12 h deployed)
                "DOCUMENT_RETRY_BASE_DELAY_SECONDS": str(options.retry_base_delay),
                "DOCUMENT_RETRY_MAX_DELAY_SECONDS": str(options.retry_max_delay),
                "POWERTOOLS_SERVICE_NAME": "eprom-integration",
                "POWERTOOLS_METRICS_NAMESPACE": "EpromIntegration",
                "POWERTOOLS_LOG_LEVEL": "INFO",
            }
        )
        # The handlers read their settings at import, as on Lambda: import them once the environment is set.
        place_order = importlib.import_module("place_order.app").lambda_handler
        status_callback = importlib.import_module("status_callback.app").lambda_handler
        publish_outcomes = importlib.import_module("publish_outcomes.app").lambda_handler
        fetch_signed_document = importlib.import_module("fetch_signed_document.app").lambda_handler
        self.front = CallbackFront(status_callback).start()
        self._stack.append(self.front)
        self.simulator.config.callback_base_url = self.front.base_url
        self.simulator.start()
        self._stack.append(self.simulator)
        self.poller = SqsPoller(self.resources["ORDER_QUEUE_URL"], place_order).start()
        self._stack.append(self.poller)
        self.stream_poller = StreamPoller(
            self.resources["FORM_ORDERS_TABLE"],
            publish_outcomes,
            function="PublishOutcomesFunction",
            on_failure_queue_url=self.resources["PUBLISH_OUTCOMES_FAILURE_QUEUE_URL"],
        ).start()
        self._stack.append(self.stream_poller)
        self.document_poller = SqsPoller(
            self.resources["SIGNED_DOCUMENT_QUEUE_URL"], fetch_signed_document, function="FetchSignedDocumentFunction"
        ).start()
        self._stack.append(self.document_poller)
        self.upstream = Upstream(self.resources["OUTCOME_QUEUE_URL"]).start()
        self._stack.append(self.upstream)
        self.sqs, self.dynamodb, self.s3 = boto3.client("sqs"), boto3.client("dynamodb"), boto3.client("s3")

    def __exit__(self, *_: object) -> None:
        for part in reversed(self._stack):  # poller first, moto last
            part.stop()
        self._stack.clear()

    @property
    def ports(self) -> list[int]:
        return [int(url.rsplit(":", 1)[1]) for url in (self.simulator.base_url, self.front.base_url,
                                                          os.environ["AWS_ENDPOINT_URL"])]  # fmt: skip

    def send(self, order: SentOrder) -> None:
        if not self.sent:
            self.first_sent_at = datetime.now(UTC)
        for _ in range(order.deliveries):
            with iam.as_upstream("OrderProducerPolicy"):
                self.sqs.send_message(QueueUrl=self.resources["ORDER_QUEUE_URL"], MessageBody=order.body)
        self.sent.append(order)

    def queue_depth(self, url_key: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.resources[url_key],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def settled(self) -> bool:
        return (
            self.queue_depth("ORDER_QUEUE_URL") == 0
            and not self.poller.busy
            and time.monotonic() - self.poller.last_activity > 1.5
            and not self.stream_poller.busy
            and time.monotonic() - self.stream_poller.last_activity > 1.5
            and self.queue_depth("SIGNED_DOCUMENT_QUEUE_URL") == 0
            and not self.document_poller.busy
            and self.simulator.pending_callbacks() == 0
        )

    def items(self) -> list[OrderItem]:
        return list(OrderStore(self.resources["FORM_ORDERS_TABLE"], client=self.dynamodb).all_items())

    def stored_object(self, pointer: ResultPointer) -> bytes:
        """The version of a results object an item points at, checked against the sha256 the item holds."""
        content = self.s3.get_object(
            Bucket=self.resources["FORM_RESULTS_BUCKET"], Key=pointer.key, VersionId=pointer.version_id
        )["Body"].read()
        if hashlib.sha256(content).hexdigest() != pointer.sha256:
            raise AssertionError(f"{pointer.key}: content differs from the sha256 in the item")
        return content

    def dead_letters(self) -> list[dict[str, Any]]:
        found = []
        while batch := self.sqs.receive_message(
            QueueUrl=self.resources["DEAD_LETTER_QUEUE_URL"],
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
            VisibilityTimeout=60,
        ).get("Messages", []):
            found += batch

        def attribute(message: dict[str, Any], name: str) -> str | None:
            return message.get("MessageAttributes", {}).get(name, {}).get("StringValue")

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
            "events": self.upstream.events(),  # what upstream keeps: one per eventId
            "events_received": self.upstream.received,  # every delivery, repeats included
            "publish_failures": self.queue_depth("PUBLISH_OUTCOMES_FAILURE_QUEUE_URL"),
            "denied_calls": [call.__dict__ for call in self.iam.calls if not call.allowed],
            "callers": sorted({call.principal for call in self.iam.calls}),  # whose calls IAM decided
            "simulator": {
                "orders_per_reference": dict(self.simulator.orders_per_reference),
                "orders": len(self.simulator.orders),
                "faults": dict(self.simulator.faults),
                "callbacks": len(self.simulator.callbacks),
                "callbacks_pending": self.simulator.pending_callbacks(),
            },
            "ports": self.ports,
            "pid": os.getpid(),
        }


def sample_orders() -> list[SentOrder]:
    orders = []
    for path in sorted((ROOT / "events" / "orders").glob("*.json")):
        body = json.loads(path.read_text())
        expect = "refused" if path.name.startswith("refused-") else "placed"
        orders.append(SentOrder(body["orderReference"], json.dumps(body), expect))
    return orders


def generated_orders(count: int, options: RunOptions) -> list[SentOrder]:
    draw = random.Random(options.seed)
    invalid = itertools.cycle(INVALID_CHANGES)
    orders = []
    for number in range(count):
        reference = f"generated-{number:05d}-{uuid.uuid4().hex[:6]}"
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
    for event in sorted(report["events"], key=lambda event: (event["statusRank"], event["occurredAt"])):
        label = _EVENT_LABELS.get(event["detailType"]) or event["status"]
        events.setdefault(event["formOrderId"] or event["orderReference"], []).append(label)
    width = max((len(order.order_reference) for order in sent), default=10)
    lines = [f"{'orderReference':<{width}}  {'outcome':<8}  status / reason", "-" * (width + 60)]
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
        lines.append(f"{order.order_reference:<{width}}  {outcome:<8}  {detail}")
        received = events.get(item.form_order_id if item else order.order_reference, ["-"])
        lines.append(f"{'':<{width}}  {'':<8}  events upstream got: {' > '.join(received)}")
    placed = sum(1 for order in sent if order.order_reference in items)
    lines.append(
        f"\n{placed} placed, {len(refused)} refused, of {len(sent)} orders; upstream received "
        f"{len(report['events_received'])} events ({len(report['events'])} distinct eventIds)"
    )
    return "\n".join(lines)


def write_state(stack: LocalStack, path: Path) -> None:
    """What `eprom --local` needs to find this stack (removed when it stops)."""
    resources = stack.resources
    state = {
        "region": os.environ["AWS_DEFAULT_REGION"],
        "target": {
            "stage": "local",
            "endpoint_url": os.environ["AWS_ENDPOINT_URL"],
            "order_queue_url": resources["ORDER_QUEUE_URL"],
            "dead_letter_queue_url": resources["DEAD_LETTER_QUEUE_URL"],
            "signed_document_queue_url": resources["SIGNED_DOCUMENT_QUEUE_URL"],
            "signed_document_dead_letter_queue_url": resources["SIGNED_DOCUMENT_DEAD_LETTER_QUEUE_URL"],
            "table": resources["FORM_ORDERS_TABLE"],
            "bucket": resources["FORM_RESULTS_BUCKET"],
            "secret_id": resources["EPROM_API_KEY_SECRET_ID"],
            "api_base_url": stack.front.base_url,
            "outcome_bus_name": resources["OUTCOME_BUS_NAME"],
            "eprom_simulator_url": stack.simulator.base_url,  # `eprom --local verify` asks it what ePROM received
            "allow_synthetic_national_ids": True,
            "allow_test_mode_orders": True,
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=1))


def serve_instructions(stack: LocalStack) -> str:
    endpoint = os.environ["AWS_ENDPOINT_URL"]
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
Call the callback endpoint as ePROM does:
  curl -s -X PUT {stack.front.base_url}/api/PromsFormOrder -H 'Content-Type: application/json' \\
      -d '{{"apiKey": "{API_KEY}", "formOrderId": "{uuid.uuid4()}", "formOrderStatus": "Ordered"}}'
Look at the table:
  AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \\
      aws dynamodb scan --region eu-north-1 --table-name {stack.resources["FORM_ORDERS_TABLE"]}
"""


def run(options: RunOptions) -> int:
    """The functions log (JSON lines) and print metrics to stdout, as on Lambda; here that goes to a file, and
    the console shows progress and the final table."""
    FUNCTION_LOG.parent.mkdir(exist_ok=True)
    console = sys.stdout
    with FUNCTION_LOG.open("w") as log, contextlib.redirect_stdout(log):
        return _run(options, partial(print, file=console, flush=True))


def _run(options: RunOptions, say: Callable[..., None]) -> int:
    started = time.monotonic()
    say(f"function logs and metrics: {FUNCTION_LOG.relative_to(ROOT)}")
    with LocalStack(options) as stack:
        try:  # Ctrl-C at any point from here stops the stack cleanly and still prints where everything stands
            for order in (sample_orders() if options.samples else []) + generated_orders(options.orders, options):
                stack.send(order)
            if options.serve:
                write_state(stack, options.state_file)
                say(serve_instructions(stack))
            wait_until_settled(stack, options, say, deadline=started + options.settle_timeout)
        except KeyboardInterrupt:
            say("\nstopping ...")
        finally:
            if options.serve:
                options.state_file.unlink(missing_ok=True)
        settled = stack.settled()
        report = stack.report(time.monotonic() - started)
        say(final_table(stack.sent, report))
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
    parser.add_argument("--orders", type=int, default=0, help="generated orders besides the samples")
    parser.add_argument("--serve", action="store_true", help="keep running for your own orders and callbacks")
    parser.add_argument("--no-samples", dest="samples", action="store_false", help="skip events/orders/*.json")
    parser.add_argument("--invalid-rate", type=float, default=0.05)
    parser.add_argument("--duplicate-rate", type=float, default=0.10, help="orders delivered twice")
    parser.add_argument("--dialect", choices=["names", "numbers"], default="names", help="ePROM's enum wire dialect")
    parser.add_argument("--form-return", choices=["Completed", "Expired"], help="also return the form")
    parser.add_argument("--latency", type=float, default=0.05, help="ePROM's answer time, seconds")
    parser.add_argument("--rate-500", type=float, default=0.0)
    parser.add_argument("--rate-429", type=float, default=0.0)
    parser.add_argument("--rate-timeout", type=float, default=0.0)
    parser.add_argument("--rate-drop", type=float, default=0.0, help="connections dropped without an answer")
    parser.add_argument("--rate-lost-answer", type=float, default=0.0, help="order created, then a gateway 504")
    parser.add_argument("--down-for", type=float, default=0.0, help="ePROM answers 503 for this many seconds")
    parser.add_argument("--down-retry-after", type=int, help="Retry-After on those 503s")
    parser.add_argument("--rate-limit", type=float, help="ePROM takes this many orders/s, 429 + Retry-After above")
    parser.add_argument("--signed-rate", type=float, default=0.0, help="generated orders with mustBeSigned")
    parser.add_argument("--document-ready-after", type=float, default=0.0, help="signed PDFs 404 until then")
    parser.add_argument("--rate-document-500", type=float, default=0.0, help="signed-PDF requests that get 500")
    parser.add_argument("--read-timeout", type=float, default=1.0, help="the placer's EPROM_READ_TIMEOUT_SECONDS")
    parser.add_argument("--retry-base-delay", type=int, default=1, help="RETRY_BASE_DELAY_SECONDS (30 deployed)")
    parser.add_argument("--retry-max-delay", type=int, default=4, help="RETRY_MAX_DELAY_SECONDS (900 deployed)")
    parser.add_argument("--retry-window-hours", type=float, default=24.0, help="ORDER_RETRY_WINDOW_HOURS")
    parser.add_argument("--ambiguous-policy", choices=["park", "retry"], default="park")
    parser.add_argument("--duplicate-callbacks", type=float, default=0.0)
    parser.add_argument("--out-of-order-callbacks", type=float, default=0.0)
    parser.add_argument("--max-faults-per-order", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--settle-timeout", type=float, default=120.0)
    parser.add_argument("--report", type=Path, help="write the final state as JSON (used by the tests)")
    parser.add_argument("--state-file", type=Path, default=RunOptions.state_file,
                        help="with --serve: where `eprom --local` finds this stack")  # fmt: skip
    return RunOptions(**vars(parser.parse_args(argv)))


def _stop(*_: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the stack as Ctrl-C does (a background `make serve` ignores SIGINT)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _stop)
    sys.exit(run(parse_args(sys.argv[1:])))
