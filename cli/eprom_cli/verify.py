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

import hashlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import requests
from eprom.message_item import DELIVERED, NOT_DELIVERED, MessageItem
from eprom.models import FormOrderStatus
from eprom.order_item import PLACED, HistoryEntry, OrderItem, ResultPointer
from pydantic import BaseModel

from eprom_cli import dead_letters, messages, orders
from eprom_cli.target import Target

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


class Step(BaseModel):
    name: str
    passed: bool
    observed: str
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
    outcome: Literal["ordering", "waiting", "passed", "failed"] = "ordering"
    cases: list[Case]
    steps: list[Step] = []
    events: list[SeenEvent] = []
    tap_queue_url: str | None = None
    tap_rule: str | None = None
    tap_bus: str | None = None
    letter: "LetterCase | None" = None  # --letter

    @property
    def references(self) -> list[str]:
        return [case.order_reference for case in self.cases]


class StepFailed(Exception):
    def __init__(self, step: str, why: str) -> None:
        super().__init__(f"{step}: {why}")
        self.step, self.why = step, why


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


def new_verification(target: Target, form_id: str | None, signed_form_id: str | None, on_behalf_of: bool,
                     expected_channel: str) -> Verification:  # fmt: skip
    run_id = new_run_id(datetime.now(UTC), uuid.uuid4().hex[:6])
    cases = [Case(kind="basic", order_reference=f"verify-{run_id}-basic", form_id=form_id)] if form_id else []
    if signed_form_id:
        cases.append(Case(kind="signed", order_reference=f"verify-{run_id}-signed", form_id=signed_form_id,
                          must_be_signed=True))  # fmt: skip
    if on_behalf_of:
        cases.append(Case(kind="on-behalf-of", order_reference=f"verify-{run_id}-on-behalf-of", form_id=form_id,
                          on_behalf_of=True))  # fmt: skip
    return Verification(run_id=run_id, target=target.name, stage=target.stage, environment=environment_of(target),
                        expected_channel=expected_channel, started_at=datetime.now(UTC), cases=cases)  # fmt: skip


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


def open_tap(target: Target, verification: Verification) -> None:
    """A queue of our own and a rule on OutcomeBus sending it this verification's events."""
    if not target.outcome_bus_name:
        raise VerificationRefused(f"stack {target.name} has no OutcomeBusName output: deploy the current template")
    name = f"eprom-verify-{verification.run_id}"
    sqs, events = target.client("sqs"), target.client("events")
    queue_url = sqs.create_queue(QueueName=name, Attributes={"MessageRetentionPeriod": "1209600",
                                                             "SqsManagedSseEnabled": "true"})["QueueUrl"]  # fmt: skip
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
    if verification.tap_rule:
        events = target.client("events")
        events.remove_targets(Rule=verification.tap_rule, EventBusName=verification.tap_bus, Ids=["verify"])
        events.delete_rule(Name=verification.tap_rule, EventBusName=verification.tap_bus)
    if verification.tap_queue_url:
        target.client("sqs").delete_queue(QueueUrl=verification.tap_queue_url)
    verification.tap_rule = verification.tap_queue_url = None


# --- the checks ----------------------------------------------------------------------------------------------------


class Checks:
    """The checklist against one target; `record` is told each step as it passes (a failure raises StepFailed)."""

    def __init__(self, target: Target, verification: Verification, record: Callable[[Step], None]) -> None:
        self.target, self.verification, self._record = target, verification, record

    def passed(self, name: str, observed: str) -> None:
        self._add(Step(name=name, passed=True, observed=observed, at=datetime.now(UTC)))

    def failed(self, failure: StepFailed) -> None:
        self._add(Step(name=failure.step, passed=False, observed=failure.why, at=datetime.now(UTC)))

    def _add(self, step: Step) -> None:
        self.verification.steps.append(step)
        self._record(step)

    def refresh(self, case: Case) -> OrderItem | None:
        """The case's item now, copied into the case (status history, pointers); fails on a second order."""
        items = orders.items_of(self.target, case.order_reference)
        if len(items) > 1:
            raise StepFailed(f"{case.kind}: order placed once",
                             f"{len(items)} ePROM orders for orderReference {case.order_reference}")  # fmt: skip
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
            raise StepFailed(name, why)
        observed = f"formOrderId {case.form_order_id}: one item for {case.order_reference}, no dead letter"
        received = self.simulator_orders(case)
        if received is not None:
            if len(received) != 1:
                raise StepFailed(name, f"ePROM received {len(received)} orders for {case.order_reference}")
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
            raise StepFailed(name, f"ePROM reported Error ({item.status_error_code})")
        if case.channel != self.verification.expected_channel:
            raise StepFailed(name, f"Ordered on channel {case.channel}, expected {self.verification.expected_channel}")
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
        return answer.json()

    def returned(self, case: Case) -> None:
        """Answers stored and readable, FormReturned delivered, the PDF for signed forms; no duplicates."""
        pointer = case.answers
        if pointer is None:
            raise StepFailed(f"{case.kind}: answers stored", "no answers stored for the order")
        content = self._read(pointer, f"{case.kind}: answers stored and readable")
        try:
            json.loads(content)
        except ValueError:
            raise StepFailed(f"{case.kind}: answers stored and readable", "the stored answers are not JSON") from None
        observed = f"s3 {pointer.key} version {pointer.version_id}, {len(content)} bytes, sha256 matches"
        self.passed(f"{case.kind}: answers stored and readable", observed)
        returned = self.events_of(case, "FormReturned")
        if not returned:
            raise StepFailed(f"{case.kind}: FormReturned delivered", "no FormReturned event reached the tap")
        if pointer.version_id not in {event.answers_version_id for event in returned}:
            raise StepFailed(f"{case.kind}: FormReturned delivered", "FormReturned names another answers version")
        self.passed(f"{case.kind}: FormReturned delivered", f"eventId {returned[0].event_id}")
        if case.must_be_signed:
            self.signed(case)
        self.no_duplicates(case)

    def signed(self, case: Case) -> None:
        name = f"{case.kind}: signed PDF stored"
        if case.signed_document is None:
            raise StepFailed(name, "no signed document stored")
        content = self._read(case.signed_document, name)
        if not content.startswith(b"%PDF-"):
            raise StepFailed(name, "the stored signed document is not a PDF")
        self.passed(name, f"s3 {case.signed_document.key}, {len(content)} bytes, a PDF, sha256 matches")
        stored = self.events_of(case, "SignedDocumentStored")
        if not stored:
            raise StepFailed(f"{case.kind}: SignedDocumentStored delivered", "no SignedDocumentStored event")
        self.passed(f"{case.kind}: SignedDocumentStored delivered", f"eventId {stored[0].event_id}")

    def no_duplicates(self, case: Case) -> None:
        statuses = Counter(entry.status for entry in case.statuses)
        repeated = sorted(status for status, count in statuses.items() if count > 1)
        if repeated:
            raise StepFailed(f"{case.kind}: no duplicate callbacks",
                             f"{', '.join(repeated)} came more than once as distinct callbacks")  # fmt: skip
        self.passed(f"{case.kind}: no duplicate callbacks",
                    f"{len(case.statuses)} callbacks: {' > '.join(str(s) for s in statuses)}")  # fmt: skip
        facts: dict[tuple[str, str | None], set[str]] = {}
        for event in self.events_of(case):
            facts.setdefault((event.detail_type, event.status), set()).add(event.event_id)
        repeated_events = sorted(f"{kind} ({status})" for (kind, status), ids in facts.items() if len(ids) > 1)
        if repeated_events:
            why = f"more than one eventId for {', '.join(repeated_events)}"
            raise StepFailed(f"{case.kind}: no duplicate events", why)
        deliveries = len(self.events_of(case))
        described = ", ".join(f"{kind} ({status})" for kind, status in facts)
        observed = f"{len(facts)} distinct events, {deliveries} deliveries: {described}"
        self.passed(f"{case.kind}: no duplicate events", observed)

    def events_of(self, case: Case, detail_type: str | None = None) -> list[SeenEvent]:
        return [event for event in self.verification.events
                if (event.order_reference == case.order_reference or
                    (case.form_order_id and event.form_order_id == case.form_order_id))
                and detail_type in (None, event.detail_type)]  # fmt: skip

    def _read(self, pointer: ResultPointer, step: str) -> bytes:
        content = orders.stored_object(self.target, pointer)
        if hashlib.sha256(content).hexdigest() != pointer.sha256:
            raise StepFailed(step, f"s3 {pointer.key} differs from the sha256 in the item")
        return content


def results_ready(case: Case) -> bool:
    return case.answers is not None and (not case.must_be_signed or case.signed_document is not None)


def play_person(target: Target, case: Case) -> None:
    """--local: ask the simulator to fill (and sign) the form as the person would."""
    try:
        answer = requests.post(f"{target.eprom_simulator_url}/_simulator/fill/{case.form_order_id}", timeout=5)
        answer.raise_for_status()
    except requests.RequestException as error:
        raise StepFailed(f"{case.kind}: the simulator fills the form", f"the request failed: {error}") from None


_PERSON_DOES = {
    "basic": "fill in and send",
    "signed": "fill in, SIGN and send",
    "on-behalf-of": "check that the task and form show whom it is for; fill in and send",
}


def instructions(verification: Verification, person: str) -> str:
    environment = verification.environment
    if environment == LOCAL:
        return "The person's part: the local ePROM simulator fills (and signs) each form, as the person would."
    lines = [
        f"Now the person's part, in {environment.name}:",
        f"  1. Log in on Helsenorge (test) {environment.helsenorge} with TestID (nivå høyt) as {person}.",
        f"     (This environment's form filler: {environment.form_filler})",
    ]
    for number, case in enumerate(verification.cases, start=2):
        lines.append(f"  {number}. The task for form {case.form_id} (formOrderId {case.form_order_id}): "
                     f"{_PERSON_DOES[case.kind]}.")  # fmt: skip
    lines.append("  Check the form's behaviour, cover letter, metadata and the task itself, as Hemit's page asks.")
    return "\n".join(lines)


def state_file_for(target: Target, report_dir: Path) -> Path:
    """Where a verification waits for the person, to be continued with `--resume`."""
    return report_dir / f"{target.name}-in-progress.json"


def start(target: Target, state_file: Path, *, form_id: str | None, signed_form_id: str | None,
          on_behalf_of: str | None, person: str, expected_channel: str,
          letter: "LetterToSend | None" = None) -> Verification:  # fmt: skip
    """A new verification, its orders (and --letter's letter) sent and its state saved in `state_file`."""
    if state_file.exists():
        raise VerificationRefused(f"a verification is waiting in {state_file}: continue it with --resume (or delete "
                                  "the file)")  # fmt: skip
    if not form_id and letter is None:
        raise VerificationRefused("give --form-id (a published form of your ordering system), or --letter")
    verification = new_verification(target, form_id, signed_form_id, on_behalf_of is not None, expected_channel)
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
                    raise StepFailed(f"{case.kind}: order placed once", why)
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
                    f"not placed within {timeout:.0f} s: ePROM did not "
                    "take it (a 401: the ApiKey; the network; ePROM down) and the placer retries it",
                )
            raise StepFailed(
                f"{case.kind}: Ordered on the expected channel",
                f"placed as {case.form_order_id}, but no "
                f"callback within {timeout:.0f} s: is the ApiBaseUrl registered with Hemit?",
            )
        progress(f"{len(checks.verification.cases) - len(pending)}/{len(checks.verification.cases)} ordered")
        sleep(POLL_SECONDS)


def wait_for_returns(checks: Checks, wait: float, progress: Callable[[str], None], sleep: Callable[[float], None],
                     clock: Callable[[], float]) -> bool:  # fmt: skip
    """True once every form is returned (signed ones with their PDF); False when `wait` ran out."""
    verification, target = checks.verification, checks.target
    started = clock()
    deadline = started + wait
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
                    )
        ready = [case for case in verification.cases if results_ready(case)]
        if len(ready) == len(verification.cases):
            return True
        if clock() > deadline:
            return False
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


def run(checks: Checks, state_file: Path, *, person: str, timeout: float, wait: float, simulated_person: bool,
        say: Callable[[str], None], progress: Callable[[str], None], sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
    """Carry the verification on from where it stands. It ends "passed", "failed" (the failed step recorded; the tap
    removed either way) or "waiting" for the person, its state saved in `state_file` (also on Ctrl-C)."""
    verification, target = checks.verification, checks.target
    try:
        if verification.outcome == "ordering":
            wait_until_ordered(checks, timeout, progress, sleep, clock)
            if verification.letter is not None:
                wait_for_letter(checks, timeout, progress, sleep, clock)
            verification.outcome = "waiting"
            save(verification, state_file)
            if target.eprom_simulator_url and simulated_person:
                for case in verification.cases:
                    play_person(target, case)
        say(instructions(verification, person))
        if not wait_for_returns(checks, wait, progress, sleep, clock):
            save(verification, state_file)
            return
        check_returns(checks, progress, sleep, clock)
        verification.outcome = "passed"
    except StepFailed as failure:
        checks.failed(failure)
        verification.outcome = "failed"
    except KeyboardInterrupt:
        save(verification, state_file)
        raise
    close_tap(target, verification)
    verification.finished_at = datetime.now(UTC)


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
