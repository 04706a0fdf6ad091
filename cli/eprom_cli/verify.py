"""Hemit's go-live verification ("Verifisering av integrasjon") as steps with evidence: orders placed once and
`Ordered` on the expected channel; the person fills (and signs) on Helsenorge; answers stored and readable,
`FormReturned` (and `SignedDocumentStored` with the PDF) delivered, no duplicate callbacks or events.

The state is a file, so a verification waiting for a person continues with `--resume` hours or days later. It
holds no national ids, codes or answers: the report is made from it.

Events are read from a tap of our own on OutcomeBus, not from OutcomeQueue: OutcomeQueue belongs to the upstream
system, which deletes what it reads (a peek would race it and miss events, and could not prove their absence),
while a rule on the same bus with OutcomeQueueRule's pattern, narrowed to this verification's orderReferences,
gets each event exactly as OutcomeQueue does. The tap (a rule and a queue) is removed when the verification ends.
"""

import contextlib
import hashlib
import json
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import requests
from botocore.exceptions import ClientError
from eprom.codes import FormOrderStatus
from eprom.message_item import MessageItem
from eprom.message_store import DELIVERED, NOT_DELIVERED
from eprom.order_item import PLACED, HistoryEntry, OrderItem, ResultPointer
from pydantic import BaseModel

from eprom_cli import dead_letters, messages, orders, outcomes
from eprom_cli.target import Target

if TYPE_CHECKING:
    from mypy_boto3_sqs.literals import QueueAttributeNameType

VERIFICATION_PERSON = "26670271527"  # Hemit's verification person since 2026-06-08 (synthetic, TestID "nivå høyt")
EVENT_SOURCE = "eprom.integration"

Kind = Literal["basic", "signed", "on-behalf-of"]


class Environment(BaseModel):
    name: str
    helsenorge: str
    form_filler: str


# By the ePROM base URL the stack orders from (eprom-contract.md §6). Production is not here: verification
# happens in the test environment (and the synthetic person is refused in production).
ENVIRONMENTS = {
    "https://proms.hemitdev.org/": Environment(name="ePROM test", helsenorge="https://tjenester.hn2.test.nhn.no/",
                                               form_filler="https://proms.hemitdev.org/proms"),
    "https://pasientrapportering.qa.nhn.no/": Environment(name="ePROM QA", helsenorge="https://tjenester.hn.qa.nhn.no/",
                                                          form_filler="https://pasientrapportering.qa.nhn.no/proms/"),
}  # fmt: skip
LOCAL = Environment(name="local ePROM simulator", helsenorge="-", form_filler="-")


# Hemit's checklist ("Verifisering av integrasjon", eprom-contract.md §6): the report is arranged by it.
ORDERING = "1. Ordering (bestilling av skjema)"
FILLING = "2. Filling (utfylling)"
RETURN = "3. Return (retur til bestillersystemet)"
SPECIAL = "4. Special cases (på vegne av, signering)"
SECTIONS = (ORDERING, FILLING, RETURN, SPECIAL)
REQUIRED_CASES: tuple[Kind, ...] = ("signed", "on-behalf-of")  # Hemit requires both


class Step(BaseModel):
    name: str
    passed: bool
    observed: str
    at: datetime
    next: str | None = None  # a failed step: what to do about it

    @property
    def section(self) -> str:
        kind, _, what = self.name.partition(": ")
        if kind in REQUIRED_CASES:
            return SPECIAL
        return ORDERING if what in ("order placed once", "Ordered on the expected channel") else RETURN


class Confirmation(BaseModel):
    """What only the person who filled the form can see, as Hemit's checklist asks it."""

    key: str
    section: str
    question: str
    case: Kind | None = None  # asked only when this case was run


CONFIRMATIONS = [
    Confirmation(key="form", section=FILLING, question="The form behaved as designed when it was filled"),
    Confirmation(key="cover-letter", section=FILLING, question="The cover letter (følgebrev) was right"),
    Confirmation(key="metadata", section=FILLING, question="The metadata shown with the form was right"),
    Confirmation(key="task", section=FILLING, question="The task (oppgave) on Helsenorge was right"),
    Confirmation(
        key="copy-stored",
        section=FILLING,
        question="A copy of the completed form was stored on Helsenorge, or not, as dontStoreCompletedFormInPha says",
    ),
    Confirmation(
        key="on-behalf-of",
        section=SPECIAL,
        case="on-behalf-of",
        question="On behalf of: the task and the "
        "form showed whom they are about, and the person who filled it got no copy",
    ),
    Confirmation(
        key="signing",
        section=SPECIAL,
        case="signed",
        question="Signed: the form could not be sent before it was signed",
    ),
]


def question_of(key: str) -> str:
    return next(item.question for item in CONFIRMATIONS if item.key == key)


class Answer(BaseModel):
    answer: Literal["yes", "no", "simulated"]
    at: datetime


class Case(BaseModel):
    """One order of the verification. No national ids: `on_behalf_of` only says that one was sent."""

    kind: Kind
    order_reference: str
    form_id: str
    must_be_signed: bool = False
    on_behalf_of: bool = False
    sent_at: datetime | None = None
    form_order_id: str | None = None
    channel: str | None = None
    statuses: list[HistoryEntry] = []  # the item's statusHistory
    answers: ResultPointer | None = None
    signed_document: ResultPointer | None = None


class SeenEvent(BaseModel):
    """An outcome event as the verification keeps it: never its loginUrl or singleUseCode."""

    detail_type: str
    event_id: str
    occurred_at: str | None
    order_reference: str | None
    form_order_id: str | None
    status: str | None
    channel: str | None = None
    answers_version_id: str | None = None
    received_at: datetime


class Verification(BaseModel):
    run_id: str
    target: str
    stage: str
    environment: Environment
    expected_channel: str
    started_at: datetime
    finished_at: datetime | None = None
    # ordering -> waiting (for the person) -> confirming (for their confirmations) -> passed, failed or incomplete
    outcome: Literal["ordering", "waiting", "confirming", "passed", "failed", "incomplete"] = "ordering"
    cases: list[Case]
    steps: list[Step] = []
    events: list[SeenEvent] = []
    system_name: str | None = None
    api_base_url: str = ""
    eprom_api_base_url: str | None = None
    version: str = ""
    simulated_person: bool = False
    waivers: dict[str, str] = {}  # a required case not run -> why (shown to Hemit)
    answers: dict[str, Answer] = {}  # confirmation key -> the person's answer
    notes: list[tuple[datetime, str]] = []  # for the timeline: the tap reopened, events re-published
    tap_queue_url: str | None = None
    tap_rule: str | None = None
    tap_bus: str | None = None
    taps_opened: int = 0
    letter: "LetterCase | None" = None  # --letter

    @property
    def references(self) -> list[str]:
        return [case.order_reference for case in self.cases]

    @property
    def kinds(self) -> set[str]:
        return {case.kind for case in self.cases}

    def confirmations(self) -> list[Confirmation]:
        """The confirmations this verification asks for (those of the cases it ran)."""
        return [item for item in CONFIRMATIONS if item.case is None or item.case in self.kinds]

    def unanswered(self) -> list[Confirmation]:
        return [item for item in self.confirmations() if item.key not in self.answers]

    def missing_cases(self) -> list[str]:
        """Required cases neither run nor waived (none for a verification of a letter alone: Hemit's cases are the
        forms')."""
        if not self.cases:
            return []
        return [kind for kind in REQUIRED_CASES if kind not in self.kinds and kind not in self.waivers]


class StepFailed(Exception):
    def __init__(self, step: str, why: str, next: str | None = None) -> None:
        super().__init__(f"{step}: {why}")
        self.step, self.why, self.next = step, why, next


class StackGone(Exception):
    """The stack's resources vanished during the verification: its state is kept for --resume."""

    def __init__(self, why: str, next: str) -> None:
        super().__init__(why)
        self.step = Step(name="the stack's resources are there", passed=False, observed=why, at=datetime.now(UTC),
                         next=next)  # fmt: skip


# What AWS answers for a table, queue or bucket that is not there (any more).
_GONE = {"ResourceNotFoundException", "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NoSuchBucket"}


class VerificationRefused(Exception):
    """The verification cannot run against this target (one line for the operator)."""


def environment_of(target: Target) -> Environment:
    if target.eprom_simulator_url:
        return LOCAL
    if target.is_production:
        raise VerificationRefused("Hemit verifies in ePROM's test environment, not prod: verify a test stage")
    for prefix, environment in ENVIRONMENTS.items():
        if (target.eprom_api_base_url or "").startswith(prefix):
            return environment
    raise VerificationRefused(f"stack {target.name} orders from {target.eprom_api_base_url or 'an unknown ePROM'}, "
                              "not ePROM's test or QA environment: Hemit verifies there")  # fmt: skip


def new_run_id(now: datetime, random_part: str) -> str:
    """The time and a random part. The Z ends the time's digits: six digits, a separator and five more (the random
    part may start with them) are read as a national id written out, and the run's orderReferences hold the id."""
    return f"{now:%Y%m%dT%H%M%SZ}-{random_part}"


def integration_version() -> str:
    """The package's version, and the commit when run from a clone."""
    from importlib.metadata import version

    described = version("eprom-aws-integration")
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,  # noqa: S607
                                cwd=Path(__file__).parent, check=True).stdout.strip()  # fmt: skip
        described += f" (commit {commit})" if commit else ""
    return described


def new_verification(target: Target, form_id: str | None, signed_form_id: str | None, on_behalf_of: bool,
                     expected_channel: str) -> Verification:  # fmt: skip
    run_id = new_run_id(datetime.now(UTC), uuid.uuid4().hex[:6])
    cases = [Case(kind="basic", order_reference=f"verify-{run_id}-basic", form_id=form_id)] if form_id else []
    if signed_form_id:
        cases.append(Case(kind="signed", order_reference=f"verify-{run_id}-signed", form_id=signed_form_id,
                          must_be_signed=True))  # fmt: skip
    if on_behalf_of and form_id:  # start() refuses --on-behalf-of without --form-id
        cases.append(Case(kind="on-behalf-of", order_reference=f"verify-{run_id}-on-behalf-of", form_id=form_id,
                          on_behalf_of=True))  # fmt: skip
    return Verification(run_id=run_id, target=target.name, stage=target.stage, environment=environment_of(target),
                        expected_channel=expected_channel, started_at=datetime.now(UTC), cases=cases,
                        api_base_url=target.api_base_url, eprom_api_base_url=target.eprom_api_base_url,
                        version=integration_version())  # fmt: skip


def order_body(case: Case, person: str, on_behalf_of: str | None) -> str:
    body: dict[str, Any] = {
        "orderReference": case.order_reference,
        "formId": case.form_id,
        "nationalId": person,
        "expiryDate": (datetime.now(UTC) + timedelta(days=14)).isoformat(),  # the person may take days
        "distributionRule": "Basic",
        "metadata": {"orderReference": case.order_reference, "verification": case.kind},
    }
    if case.must_be_signed:
        body["mustBeSigned"] = True
    if case.on_behalf_of:
        body["onBehalfOfNationalId"] = on_behalf_of
    return json.dumps(body)


# --- the tap on OutcomeBus -----------------------------------------------------------------------------------------


TAP_RETENTION_SECONDS = 86400  # SQS's shortest is 60 s; the tap is read as the run goes and removed at its end


def open_tap(target: Target, verification: Verification) -> None:
    """A queue of our own and a rule on OutcomeBus sending it this verification's events. The queue is encrypted
    with the stack's key (the events are the orders'), keeps them a day, and is removed whenever the command ends;
    a resume opens a new one (SQS refuses a queue's name for 60 s after its deletion, so each has its own)."""
    if not target.outcome_bus_name:
        raise VerificationRefused(f"stack {target.name} has no OutcomeBusName output: deploy the current template")
    verification.taps_opened += 1
    name = f"eprom-verify-{verification.run_id}-{verification.taps_opened}"
    sqs, events = target.client("sqs"), target.client("events")
    attributes: dict[QueueAttributeNameType, str] = {"MessageRetentionPeriod": str(TAP_RETENTION_SECONDS)}
    # EventBridge may use the stack's key: its key policy grants it (EventBridgeDeliversToEncryptedQueues)
    if target.encryption_key_arn:
        attributes["KmsMasterKeyId"] = target.encryption_key_arn
    else:
        attributes["SqsManagedSseEnabled"] = "true"
    queue_url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    verification.tap_queue_url, verification.tap_rule, verification.tap_bus = queue_url, name, target.outcome_bus_name
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": [EVENT_SOURCE], "detail": {"orderReference": verification.references}}
    rule_arn = events.put_rule(Name=name, EventBusName=target.outcome_bus_name, EventPattern=json.dumps(pattern),
                               Description="eprom verify: this verification's outcome events")["RuleArn"]  # fmt: skip
    # EventBridge may send to the queue only with a queue policy naming the rule:
    # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sqs-permissions
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
        "Resource": queue_arn, "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}}}]}  # fmt: skip
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
    events.put_targets(Rule=name, EventBusName=target.outcome_bus_name, Targets=[{"Id": "verify", "Arn": queue_arn}])


def read_tap(target: Target, verification: Verification) -> None:
    """Move what reached the tap into the verification (only the fields the report may show)."""
    if not verification.tap_queue_url:
        return
    sqs = target.client("sqs")
    while messages := sqs.receive_message(QueueUrl=verification.tap_queue_url, MaxNumberOfMessages=10,
                                          WaitTimeSeconds=0).get("Messages", []):  # fmt: skip
        for message in messages:
            envelope = json.loads(message["Body"])
            detail = envelope.get("detail", {})
            verification.events.append(SeenEvent(
                detail_type=envelope.get("detail-type", "?"), event_id=str(detail.get("eventId")),
                occurred_at=detail.get("occurredAt"), order_reference=detail.get("orderReference"),
                form_order_id=detail.get("formOrderId"), status=detail.get("status"),
                channel=detail.get("notificationChannel"),
                answers_version_id=(detail.get("answers") or {}).get("versionId"), received_at=datetime.now(UTC),
            ))  # fmt: skip
            sqs.delete_message(QueueUrl=verification.tap_queue_url, ReceiptHandle=message["ReceiptHandle"])


def close_tap(target: Target, verification: Verification) -> None:
    """Remove the rule and the queue (what is gone already, with the stack say, is no error)."""
    if verification.tap_rule and verification.tap_bus:  # open_tap sets both
        events = target.client("events")
        with _unless_gone():
            events.remove_targets(Rule=verification.tap_rule, EventBusName=verification.tap_bus, Ids=["verify"])
        with _unless_gone():
            events.delete_rule(Name=verification.tap_rule, EventBusName=verification.tap_bus)
    if verification.tap_queue_url:
        with _unless_gone():
            target.client("sqs").delete_queue(QueueUrl=verification.tap_queue_url)
    verification.tap_rule = verification.tap_queue_url = None


@contextlib.contextmanager
def _unless_gone() -> Iterator[None]:
    try:
        yield
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in _GONE:
            raise


def reopen_tap(target: Target, verification: Verification, say: Callable[[str], None]) -> None:
    """On resume: a new tap, and the orders' events published again from the table (the eventIds the publisher gave
    them), so that what happened while no tap was open reaches this one."""
    open_tap(target, verification)
    # Read after the tap is open, so that whatever was published before is in them. By formOrderId (a consistent
    # read): the orderReference index may not show an item written a moment ago.
    store = orders.store(target)
    items = [item for case in verification.cases if case.form_order_id and (item := store.item(case.form_order_id))]
    if items:
        outcomes.republish(target, items)
        note = f"tap reopened; the events of {len(items)} order(s) re-published from the table (the same eventIds)"
        verification.notes.append((datetime.now(UTC), note))
        say(note)


# --- the checks ----------------------------------------------------------------------------------------------------


class Checks:
    """The checklist against one target; `record` is told each step as it passes (a failure raises StepFailed)."""

    def __init__(self, target: Target, verification: Verification, record: Callable[[Step], None]) -> None:
        self.target, self.verification, self._record = target, verification, record

    def passed(self, name: str, observed: str) -> None:
        self._add(Step(name=name, passed=True, observed=observed, at=datetime.now(UTC)))

    def failed(self, failure: StepFailed) -> None:
        self._add(Step(name=failure.step, passed=False, observed=failure.why, at=datetime.now(UTC), next=failure.next))

    def _add(self, step: Step) -> None:
        self.verification.steps.append(step)
        self._record(step)

    def refresh(self, case: Case) -> OrderItem | None:
        """The case's item now, copied into the case (status history, pointers); fails on a second order."""
        items = orders.items_of(self.target, case.order_reference)
        if len(items) > 1:
            raise StepFailed(f"{case.kind}: order placed once",
                             f"{len(items)} ePROM orders for orderReference {case.order_reference}",
                             "a duplicate order: report it to the integration's maintainers with this report, and "
                             "have the person ignore the second task")  # fmt: skip
        if not items:
            return None
        [item] = items
        case.form_order_id = item.form_order_id
        case.channel = item.notification_channel or case.channel
        case.statuses = list(item.status_history)
        case.answers = item.answers
        case.signed_document = item.signed_document
        return item

    def refusal(self, case: Case) -> str | None:
        with dead_letters.held(self.target, "orders") as letters:
            found = dead_letters.chosen(letters, None, case.order_reference)
        return f"in the order DLQ ({found[0].rejection_class}): {found[0].reason}" if found else None

    def placed_once(self, case: Case, item: OrderItem) -> None:
        name = f"{case.kind}: order placed once"
        if why := self.refusal(case):
            raise StepFailed(
                name,
                why,
                "read the reason (`eprom ... dead-letters list`), fix it (a published form of "
                "your ordering system; the stage's settings), then " + NEW_RUN,
            )
        observed = f"formOrderId {case.form_order_id}: one item for {case.order_reference}, no dead letter"
        received = self.simulator_orders(case)
        if received is not None:
            if len(received) != 1:
                raise StepFailed(
                    name,
                    f"ePROM received {len(received)} orders for {case.order_reference}",
                    "a duplicate order: report it to the integration's maintainers with this report",
                )
            observed += ", ePROM (simulator) received one order"
            if case.on_behalf_of and not received[0]["onBehalfOf"]:
                raise StepFailed(f"{case.kind}: order carries onBehalfOfNationalId", "ePROM received it without")
            if case.must_be_signed and not received[0]["mustBeSigned"]:
                raise StepFailed(f"{case.kind}: order carries mustBeSigned", "ePROM received it without")
        self.passed(name, observed)
        if case.on_behalf_of:
            self.passed(f"{case.kind}: order carries onBehalfOfNationalId",
                        "ePROM received onBehalfOfNationalId" if received is not None
                        else "sent with onBehalfOfNationalId and placed; the person checks it in the task")  # fmt: skip

    def ordered(self, case: Case, item: OrderItem) -> None:
        name = f"{case.kind}: Ordered on the expected channel"
        status = item.status
        if status == FormOrderStatus.Error.name:
            raise StepFailed(
                name,
                f"ePROM reported Error ({item.status_error_code})",
                "ePROM could not notify the person: check the test person's channels with Hemit, then " + NEW_RUN,
            )
        if case.channel != self.verification.expected_channel:
            raise StepFailed(
                name,
                f"Ordered on channel {case.channel}, expected {self.verification.expected_channel}",
                "give --expected-channel the channel Hemit expects, or ask Hemit why the person was "
                "notified on another; then " + NEW_RUN,
            )
        self.passed(name, f"status {status}, notificationChannel {case.channel}")

    def simulator_orders(self, case: Case) -> list[dict[str, Any]] | None:
        """What the local simulator received for this reference; None for a deployed stack or if unreachable."""
        if not self.target.eprom_simulator_url:
            return None
        try:
            answer = requests.get(f"{self.target.eprom_simulator_url}/_simulator/orders",
                                  params={"orderReference": case.order_reference}, timeout=5)  # fmt: skip
            answer.raise_for_status()
        except requests.RequestException:
            return None
        received: list[dict[str, Any]] = answer.json()
        return received

    def returned(self, case: Case) -> None:
        """Answers stored and readable, FormReturned delivered, the PDF for signed forms; no duplicates."""
        pointer = case.answers
        if pointer is None:
            raise StepFailed(
                f"{case.kind}: answers stored",
                "no answers stored for the order",
                "check StatusCallbackFunction's log and CallbackServerErrorsAlarm; ePROM re-sends a "
                "return we did not acknowledge: `eprom ... verify --resume` later",
            )
        content = self._read(pointer, f"{case.kind}: answers stored and readable")
        try:
            json.loads(content)
        except ValueError:
            raise StepFailed(
                f"{case.kind}: answers stored and readable",
                "the stored answers are not JSON",
                "report it to the integration's maintainers with this report",
            ) from None
        observed = f"s3 {pointer.key} version {pointer.version_id}, {len(content)} bytes, sha256 matches"
        self.passed(f"{case.kind}: answers stored and readable", observed)
        returned = self.events_of(case, "FormReturned")
        if not returned:
            raise StepFailed(
                f"{case.kind}: FormReturned delivered",
                "no FormReturned event reached the tap",
                "check PublishOutcomesFunction's log and the Outcome alarms (operations.md), then "
                "`eprom ... verify --resume` (it re-publishes the orders' events)",
            )
        if pointer.version_id not in {event.answers_version_id for event in returned}:
            raise StepFailed(
                f"{case.kind}: FormReturned delivered",
                "FormReturned names another answers version",
                "the person sent the form twice: " + NEW_RUN,
            )
        self.passed(f"{case.kind}: FormReturned delivered", f"eventId {returned[0].event_id}")
        if case.must_be_signed:
            self.signed(case)
        self.no_duplicates(case)

    def signed(self, case: Case) -> None:
        name = f"{case.kind}: signed PDF stored"
        if case.signed_document is None:
            raise StepFailed(
                name,
                "no signed document stored",
                "check FetchSignedDocumentFunction's log and `eprom ... dead-letters list --queue "
                "documents`, then `eprom ... verify --resume`",
            )
        content = self._read(case.signed_document, name)
        if not content.startswith(b"%PDF-"):
            raise StepFailed(
                name,
                "the stored signed document is not a PDF",
                "report it to the integration's maintainers with this report",
            )
        self.passed(name, f"s3 {case.signed_document.key}, {len(content)} bytes, a PDF, sha256 matches")
        stored = self.events_of(case, "SignedDocumentStored")
        if not stored:
            raise StepFailed(
                f"{case.kind}: SignedDocumentStored delivered",
                "no SignedDocumentStored event",
                "check PublishOutcomesFunction's log, then `eprom ... verify --resume`",
            )
        self.passed(f"{case.kind}: SignedDocumentStored delivered", f"eventId {stored[0].event_id}")

    def no_duplicates(self, case: Case) -> None:
        statuses = Counter(str(entry.status) for entry in case.statuses)
        repeated = sorted(status for status, count in statuses.items() if count > 1)
        if repeated:
            raise StepFailed(f"{case.kind}: no duplicate callbacks",
                             f"{', '.join(repeated)} came more than once as distinct callbacks",
                             "show Hemit this report's timeline (ePROM sent them); nothing to fix on our side "
                             "unless Hemit finds our reply was not {\"success\": true}")  # fmt: skip
        self.passed(f"{case.kind}: no duplicate callbacks",
                    f"{len(case.statuses)} callbacks: {' > '.join(str(s) for s in statuses)}")  # fmt: skip
        facts: dict[tuple[str, str | None], set[str]] = {}
        for event in self.events_of(case):
            facts.setdefault((event.detail_type, event.status), set()).add(event.event_id)
        repeated_events = sorted(f"{kind} ({status})" for (kind, status), ids in facts.items() if len(ids) > 1)
        if repeated_events:
            why = f"more than one eventId for {', '.join(repeated_events)}"
            raise StepFailed(
                f"{case.kind}: no duplicate events", why, "report it to the integration's maintainers with this report"
            )
        delivered = self.events_of(case)
        first: dict[str, str] = {}  # eventId -> the fact as first delivered (a re-published one repeats its id)
        for event in delivered:
            first.setdefault(event.event_id, f"{event.detail_type} ({event.status})")
        observed = f"{len(first)} distinct events, {len(delivered)} deliveries: {', '.join(first.values())}"
        self.passed(f"{case.kind}: no duplicate events", observed)

    def events_of(self, case: Case, detail_type: str | None = None) -> list[SeenEvent]:
        return [event for event in self.verification.events
                if (event.order_reference == case.order_reference or
                    (case.form_order_id and event.form_order_id == case.form_order_id))
                and detail_type in (None, event.detail_type)]  # fmt: skip

    def _read(self, pointer: ResultPointer, step: str) -> bytes:
        content = orders.stored_object(self.target, pointer)
        if hashlib.sha256(content).hexdigest() != pointer.sha256:
            raise StepFailed(
                step,
                f"s3 {pointer.key} differs from the sha256 in the item",
                "report it to the integration's maintainers with this report",
            )
        return content


NEW_RUN = "run a new verification (`eprom ... verify` without --resume)"


def results_ready(case: Case) -> bool:
    return case.answers is not None and (not case.must_be_signed or case.signed_document is not None)


def play_person(target: Target, case: Case) -> None:
    """--local: ask the simulator to fill (and sign) the form as the person would."""
    try:
        answer = requests.post(f"{target.eprom_simulator_url}/_simulator/fill/{case.form_order_id}", timeout=5)
        answer.raise_for_status()
    except requests.RequestException as error:
        raise StepFailed(
            f"{case.kind}: the simulator fills the form",
            f"the request failed: {error}",
            "is `make serve` still running? Then `eprom --local verify --resume`",
        ) from None


_PERSON_DOES = {
    "basic": "fill in and send",
    "signed": "fill in, SIGN and send",
    "on-behalf-of": "check that the task and form show whom it is for; fill in and send",
}


def instructions(verification: Verification, person: str) -> str:
    environment = verification.environment
    if verification.simulated_person:
        return "The person's part: the local ePROM simulator fills (and signs) each form, as the person would."
    if environment == LOCAL:
        lines = ["Now the person's part: fill each form through the simulator, as ePROM's person would:"]
        lines += [f"  POST /_simulator/fill/{case.form_order_id} ({case.kind})" for case in verification.cases]
        return "\n".join(lines)
    lines = [
        f"Now the person's part, in {environment.name}:",
        f"  1. Log in on Helsenorge (test) {environment.helsenorge} with TestID (nivå høyt) as {person}.",
        f"     (This environment's form filler: {environment.form_filler})",
    ]
    for number, case in enumerate(verification.cases, start=2):
        lines.append(f"  {number}. The task for form {case.form_id} (formOrderId {case.form_order_id}): "
                     f"{_PERSON_DOES[case.kind]}.")  # fmt: skip
    lines.append("  Look at the form's behaviour, the cover letter, the metadata, the task itself and whether a copy "
                 "is stored: you are asked to confirm each when the forms are back.")  # fmt: skip
    return "\n".join(lines)


def state_file_for(target: Target, report_dir: Path) -> Path:
    """Where a verification waits for the person, to be continued with `--resume`."""
    return report_dir / f"{target.name}-in-progress.json"


def start(target: Target, state_file: Path, *, form_id: str | None, signed_form_id: str | None,
          on_behalf_of: str | None, person: str, expected_channel: str, system_name: str | None,
          simulated_person: bool, waivers: dict[str, str],
          letter: "LetterToSend | None" = None) -> Verification:  # fmt: skip
    """A new verification, its orders (and --letter's letter) sent and its state saved in `state_file`."""
    if state_file.exists():
        raise VerificationRefused(f"a verification is waiting in {state_file}: continue it with --resume, or give it "
                                  "up with --abandon")  # fmt: skip
    if not form_id and letter is None:
        raise VerificationRefused("give --form-id (a published form of your ordering system), or --letter")
    if on_behalf_of is not None and not form_id:
        raise VerificationRefused("--on-behalf-of orders --form-id on the person's behalf: give --form-id too")
    if simulated_person and not target.eprom_simulator_url:
        raise VerificationRefused("--simulated-person needs the local simulator (--local): on a deployed stack a "
                                  "person fills the forms")  # fmt: skip
    verification = new_verification(target, form_id, signed_form_id, on_behalf_of is not None, expected_channel)
    verification.system_name, verification.simulated_person = system_name, simulated_person
    verification.waivers = {kind: reason for kind, reason in waivers.items() if kind not in verification.kinds}
    send_orders(target, verification, person, on_behalf_of)
    if letter is not None:
        send_letter(target, verification, letter, person)
    save(verification, state_file)
    return verification


def resume(state_file: Path) -> Verification:
    if not state_file.exists():
        raise VerificationRefused(f"no verification waiting in {state_file}")
    return load(state_file)


def save(verification: Verification, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(verification.model_dump_json(indent=1))


def load(path: Path) -> Verification:
    return Verification.model_validate_json(path.read_text())


# --- the run -------------------------------------------------------------------------------------------------------

POLL_SECONDS = 2.0
SLOW_POLL_AFTER_SECONDS, SLOW_POLL_SECONDS = 300, 30  # a person takes minutes to days: look less often then
EVENTS_GRACE_SECONDS = 60  # EventBridge delivers within seconds; the tap is read until then


def send_orders(target: Target, verification: Verification, person: str, on_behalf_of: str | None) -> None:
    """Check every order with the placer's own model first, then open the tap, then send them."""
    if not verification.cases:  # a letter alone
        return
    bodies = {}
    for case in verification.cases:
        checked = orders.check_body(order_body(case, person, on_behalf_of), target)
        if checked.problem:
            raise VerificationRefused(f"the {case.kind} order would be refused: {checked.problem}")
        bodies[case.order_reference] = checked
    open_tap(target, verification)
    for case in verification.cases:
        orders.send(target, bodies[case.order_reference])
        case.sent_at = datetime.now(UTC)


def wait_until_ordered(checks: Checks, timeout: float, progress: Callable[[str], None], sleep: Callable[[float], None],
                       clock: Callable[[], float]) -> None:  # fmt: skip
    deadline = clock() + timeout
    pending = list(checks.verification.cases)
    while pending:
        for case in list(pending):
            item = checks.refresh(case)
            if item is None:
                if why := checks.refusal(case):
                    fix = "read the reason (`eprom ... dead-letters list`), fix it, then " + NEW_RUN
                    raise StepFailed(f"{case.kind}: order placed once", why, fix)
            elif item.status not in (None, PLACED):
                checks.placed_once(case, item)
                checks.ordered(case, item)
                pending.remove(case)
        if not pending:
            return
        if clock() > deadline:
            case = pending[0]
            if case.form_order_id is None:
                raise StepFailed(
                    f"{case.kind}: order placed once",
                    f"not placed within {timeout:.0f} s: ePROM did not take it (a 401: the ApiKey; the network; ePROM "
                    "down) and the placer retries it",
                    "check the key (`eprom ... api-key set` with the key Hemit sent for this environment) and "
                    "PlaceOrderFunction's log; the placer keeps retrying: `eprom ... verify --resume` once it is fixed",
                )
            raise StepFailed(
                f"{case.kind}: Ordered on the expected channel",
                f"placed as {case.form_order_id}, but no callback within {timeout:.0f} s",
                "check that Hemit registered the ApiBaseUrl in this report (`eprom ... onboarding` prints it) and that "
                "the callback API lets ePROM in; ePROM re-sends callbacks: `eprom ... verify --resume`",
            )
        progress(f"{len(checks.verification.cases) - len(pending)}/{len(checks.verification.cases)} ordered")
        sleep(POLL_SECONDS)


def wait_for_returns(checks: Checks, wait: float, say: Callable[[str], None], progress: Callable[[str], None],
                     sleep: Callable[[float], None], clock: Callable[[], float]) -> bool:  # fmt: skip
    """True once every form is returned (signed ones with their PDF); False when `wait` ran out. Says how many are
    returned whenever that changes."""
    verification, target = checks.verification, checks.target
    started = clock()
    deadline = started + wait
    said = -1
    while True:
        read_tap(target, verification)
        for case in verification.cases:
            checks.refresh(case)
        with dead_letters.held(target, "documents") as letters:
            for case in verification.cases:
                if case.form_order_id and (lost := dead_letters.chosen(letters, None, case.form_order_id)):
                    raise StepFailed(
                        f"{case.kind}: signed PDF stored",
                        f"in the signed-document DLQ ({lost[0].rejection_class}): {lost[0].reason}",
                        "fix the cause (the key, the network, Hemit), `eprom ... dead-letters redrive --queue "
                        "documents`, then `eprom ... verify --resume`",
                    )
        ready = [case for case in verification.cases if results_ready(case)]
        if len(ready) == len(verification.cases):
            return True
        if clock() > deadline:
            return False
        if len(ready) != said:
            said = len(ready)
            say(f"waiting for the person: {said}/{len(verification.cases)} form(s) returned (for up to "
                f"{wait / 3600:g} h; Ctrl-C pauses, --resume continues)")  # fmt: skip
        progress(f"waiting for the person: {len(ready)}/{len(verification.cases)} forms returned")
        sleep(POLL_SECONDS if clock() < started + SLOW_POLL_AFTER_SECONDS else SLOW_POLL_SECONDS)


def check_returns(checks: Checks, progress: Callable[[str], None], sleep: Callable[[float], None],
                  clock: Callable[[], float]) -> None:  # fmt: skip
    verification = checks.verification
    deadline = clock() + EVENTS_GRACE_SECONDS
    wanted = [(case, kind) for case in verification.cases
              for kind in ("FormReturned", *(("SignedDocumentStored",) if case.must_be_signed else ()))]  # fmt: skip
    while clock() < deadline and not all(checks.events_of(case, kind) for case, kind in wanted):
        progress("waiting for the outcome events")
        sleep(POLL_SECONDS)
        read_tap(checks.target, verification)
    for case in verification.cases:
        checks.refresh(case)
        checks.returned(case)


def collect_answers(verification: Verification, given: set[str], ask: Callable[[Confirmation], bool | None]) -> None:
    """The person's confirmations: the simulator's part is "simulated"; --confirm KEY (or all) says yes; at a
    terminal each is asked; what is left stays unanswered (the verification is then incomplete)."""
    for item in verification.unanswered():
        if verification.simulated_person:
            answer: Literal["yes", "no", "simulated"] | None = "simulated"
        elif item.key in given or "all" in given:
            answer = "yes"
        else:
            said = ask(item)
            answer = None if said is None else "yes" if said else "no"
        if answer:
            verification.answers[item.key] = Answer(answer=answer, at=datetime.now(UTC))


def conclude(verification: Verification) -> None:
    if any(answer.answer == "no" for answer in verification.answers.values()):
        verification.outcome = "failed"
    elif verification.unanswered() or verification.missing_cases():
        verification.outcome = "incomplete"
    else:
        verification.outcome = "passed"


def is_finished(verification: Verification) -> bool:
    """Nothing more to continue with --resume (an incomplete one still waits for confirmations)."""
    return verification.outcome in ("passed", "failed") or (
        verification.outcome == "incomplete" and not verification.unanswered()
    )


def await_orders(checks: Checks, state_file: Path, timeout: float, progress: Callable[[str], None],
                 sleep: Callable[[float], None], clock: Callable[[], float]) -> None:  # fmt: skip
    """The orders Ordered (and the letter Sent): then the verification waits for the person (saved so)."""
    verification = checks.verification
    wait_until_ordered(checks, timeout, progress, sleep, clock)
    if verification.letter is not None:
        wait_for_letter(checks, timeout, progress, sleep, clock)
    verification.outcome = "waiting"
    save(verification, state_file)


def await_returns(checks: Checks, person: str, wait: float, say: Callable[[str], None],
                  progress: Callable[[str], None], sleep: Callable[[float], None],
                  clock: Callable[[], float]) -> bool:  # fmt: skip
    """The person (or the simulator playing them) fills the forms, and the returns are checked: then the
    verification is "confirming". False when `wait` ran out first (it still waits)."""
    verification = checks.verification
    if verification.simulated_person:
        for case in verification.cases:
            checks.refresh(case)
            if case.answers is None:
                play_person(checks.target, case)
    say(instructions(verification, person))
    if not wait_for_returns(checks, wait, say, progress, sleep, clock):
        return False
    check_returns(checks, progress, sleep, clock)
    verification.outcome = "confirming"
    return True


def run(checks: Checks, state_file: Path, *, person: str, timeout: float, wait: float, resumed: bool,
        given: set[str], ask: Callable[[Confirmation], bool | None], say: Callable[[str], None],
        progress: Callable[[str], None], sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
    """Carry the verification on from where it stands, to "passed", "failed" (the failed step recorded),
    "incomplete" (a required case not run, or confirmations not given) or "waiting" for the person. The tap is
    removed whatever happens (a resume opens a new one) and the state saved in `state_file`; StackGone when the
    stack's resources vanished."""
    verification, target = checks.verification, checks.target
    try:
        if resumed and verification.outcome in ("ordering", "waiting"):
            reopen_tap(target, verification, say)
        if verification.outcome == "ordering":
            await_orders(checks, state_file, timeout, progress, sleep, clock)
        if verification.outcome == "waiting" and not await_returns(checks, person, wait, say, progress, sleep, clock):
            return
        collect_answers(verification, given, ask)
        conclude(verification)
    except StepFailed as failure:
        checks.failed(failure)
        verification.outcome = "failed"
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code not in _GONE:
            raise
        raise StackGone(f"a resource of stack {target.name} is gone ({code})",
                        "redeploy the stack (`make deploy STAGE=...`), then `eprom ... verify --resume`: the state is "
                        "kept and a new tap is opened") from None  # fmt: skip
    finally:
        close_tap(target, verification)
        if is_finished(verification):
            verification.finished_at = verification.finished_at or datetime.now(UTC)
        save(verification, state_file)


def abandon(target: Target, state_file: Path) -> Verification:
    """Give up the verification waiting in `state_file`: its tap (left by a killed run) and its state removed."""
    verification = resume(state_file)
    close_tap(target, verification)
    state_file.unlink()
    return verification


# --- the letter (--letter): sent to the person, accepted by ePROM, called back Sent --------------------------------
# ePROM publishes no shape of a letter's documentCollection (eprom.document_collection says what is assumed): a letter
# ePROM's test environment takes and reports Sent is what shows the assumption right.


class LetterToSend(BaseModel):
    """What `--letter` sends: the PDF, and the sender the person sees."""

    pdf: Path
    organisation_name: str
    organisation_nr: str


class LetterCase(BaseModel):
    """The letter of the verification. No national id: the person is the verification's."""

    message_reference: str
    title: str
    document_key: str
    document_bytes: int
    sent_at: datetime | None = None
    message_to_citizen_id: str | None = None
    channel: str | None = None
    status: str | None = None


def send_letter(target: Target, verification: Verification, letter: LetterToSend, person: str) -> None:
    """The PDF into MessageDocumentsBucket, and a letter to the person on MessageQueue (checked with the sender's own
    model first)."""
    reference = f"verify-{verification.run_id}-letter"
    case = LetterCase(message_reference=reference, title=f"Verifisering av brev {verification.run_id}",
                      document_key=f"documents/{reference}.pdf", document_bytes=letter.pdf.stat().st_size)  # fmt: skip
    body = {
        "messageReference": reference,
        "kind": "letter",
        "nationalId": person,
        "senderInfo": {"organisationName": letter.organisation_name, "organisationNr": letter.organisation_nr},
        "messageInfo": {"title": case.title, "description": "Verifisering av integrasjonen med ePROM"},
        "documents": [{"key": case.document_key, "title": "Verifisering", "main": True}],
        "notificationPriorityList": ["Helsenorge", "DigitalMailbox"],
    }
    checked = messages.check_body(json.dumps(body), target)
    if checked.problem:
        raise VerificationRefused(f"the letter would be refused: {checked.problem}")
    messages.upload(target, case.document_key, letter.pdf)
    messages.send(target, checked)
    case.sent_at = datetime.now(UTC)
    verification.letter = case


def wait_for_letter(checks: Checks, timeout: float, progress: Callable[[str], None], sleep: Callable[[float], None],
                    clock: Callable[[], float]) -> None:  # fmt: skip
    """The letter accepted by ePROM (sent once), then its callback Sent."""
    case, target = checks.verification.letter, checks.target
    assert case is not None
    accepted, deadline = False, clock() + timeout
    while True:
        item = messages.find(target, case.message_reference)
        if item is not None:
            case.message_to_citizen_id, case.channel, case.status = (
                item.message_to_citizen_id, item.notification_channel, item.status)  # fmt: skip
        if not accepted and item is not None and item.status is not None:
            if item.status == NOT_DELIVERED:
                raise StepFailed("letter: accepted by ePROM", "ePROM reaches the person on no channel of the list "
                                 f"(notificationChannel {item.notification_channel}): nothing was sent")  # fmt: skip
            checks.passed("letter: accepted by ePROM", _letter_taken(checks, case, item))
            accepted = True
        if accepted and case.status == DELIVERED:
            checks.passed("letter: ePROM called back Sent", f"messageToCitizenId {case.message_to_citizen_id}: "
                          f"Sent on channel {case.channel}")  # fmt: skip
            return
        if accepted and case.status == NOT_DELIVERED:
            raise StepFailed("letter: ePROM called back Sent", "ePROM called back Error: the person could not be "
                             "notified")  # fmt: skip
        if not accepted:
            with dead_letters.held(target, "messages") as letters:
                if found := dead_letters.chosen(letters, None, case.message_reference):
                    raise StepFailed("letter: accepted by ePROM",
                                     f"in the message DLQ ({found[0].rejection_class}): {found[0].reason}")  # fmt: skip
        if clock() > deadline:
            step = "letter: ePROM called back Sent" if accepted else "letter: accepted by ePROM"
            why = (f"no callback within {timeout:.0f} s (letters come last in ePROM's queue: a longer --timeout); is "
                   "the ApiBaseUrl registered with Hemit?" if accepted
                   else f"not sent within {timeout:.0f} s: see SendMessageFunction's log")  # fmt: skip
            raise StepFailed(step, why)
        progress("waiting for the letter's callback" if accepted else "waiting for the letter to be sent")
        sleep(POLL_SECONDS)


def _letter_taken(checks: Checks, case: LetterCase, item: MessageItem) -> str:
    observed = (f"messageToCitizenId {item.message_to_citizen_id}, notificationChannel {item.notification_channel}; "
                f"the PDF ({case.document_bytes} bytes) in documentCollection.mainDocument")  # fmt: skip
    if checks.target.eprom_simulator_url:
        try:
            answer = requests.get(f"{checks.target.eprom_simulator_url}/_simulator/messages",
                                  params={"title": case.title}, timeout=5)  # fmt: skip
            answer.raise_for_status()
        except requests.RequestException:
            return observed
        if len(answer.json()) != 1:
            raise StepFailed("letter: accepted by ePROM", f"ePROM received {len(answer.json())} letters")
        observed += ", ePROM (simulator) received one letter"
    return observed


Verification.model_rebuild()  # its `letter` is a LetterCase, defined above it
