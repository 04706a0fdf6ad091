"""One way to consume an SQS queue from Lambda: each record gets a Verdict, and the consumer carries it out.

- Done: the message is deleted (Lambda's event source deletes what is not reported in `batchItemFailures`).
- Refuse: it goes to the queue's dead-letter queue with its reason and class (and is announced first, when the
  queue's users must hear of it), never retried by us.
- RetryLater: it stays on the queue, and its next delivery is set here (SQS's visibility), because Lambda's event
  source leaves a failed message's visibility as it is. A failure backs off exponentially from the policy's base
  to its cap, never sooner than the other side's Retry-After; flow control (ePROM pacing us) comes back when it is
  due, without growth. Once the message's retry window is spent it is given up: Refuse as RetriesExhausted.

A handler that raises is a failure like any other (retried, and given up after the window): the type of the error
is logged, never its message, which could quote what it failed on.

For the handlers whose call to ePROM rests on a claim (eprom.claims): each record's `Attempt` at its reference, and
`parked`, the verdict for an attempt ePROM may have carried out (a person's redrive of it takes the claim over).
"""

import math
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from eprom.queues import AMBIGUOUS_ATTEMPT_ID, MAX_RETRY_DELAY_SECONDS, DeadLetterQueue, QueueVisibility, SqsRecord

logger = Logger(child=True)
metrics = Metrics()
RETRIES_EXHAUSTED = "RetriesExhausted"


@dataclass(frozen=True)
class Done:
    """Nothing left to do for the message. `count`: the metric it adds one to (e.g. OrdersPlaced)."""

    log: str
    count: str | None = None
    log_keys: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Refuse:
    """To the dead-letter queue with `reason` (no personal data) and `rejection_class`; `attributes`: more message
    attributes of the dead letter (e.g. the attempt an Ambiguous order was parked for)."""

    reason: str
    rejection_class: str
    attributes: dict[str, str] = field(default_factory=dict)
    count: str | None = None


@dataclass(frozen=True)
class RetryLater:
    """Delivered again later. `retry_after_seconds`: the other side's Retry-After (a failure), or, with
    `flow_control`, when the next try is due (no backoff on top). `count`: a metric besides the retry's own."""

    reason: str
    retry_after_seconds: float | None = None
    flow_control: bool = False
    count: str | None = None


type Verdict = Done | Refuse | RetryLater
AMBIGUOUS = "Ambiguous"  # the class of a parked message


@dataclass(frozen=True)
class Attempt:
    """One record's try at its reference's claim."""

    id: str
    sending_until: float  # epoch seconds: the invocation ends by then
    replacing: str | None = None  # a redriven parked message: the Ambiguous attempt a person found nothing of

    @classmethod
    def of(cls, record: SqsRecord, ends_at: float) -> "Attempt":
        # A parked message a person redrove keeps its attributes: the attempt it was parked for is theirs to replace.
        redriven = record.string_attributes.get("rejectionClass") == AMBIGUOUS
        return cls(
            id=str(uuid.uuid4()),
            sending_until=ends_at,
            replacing=record.string_attributes.get(AMBIGUOUS_ATTEMPT_ID) if redriven else None,
        )


def parked(reason: str, attempt_id: str, *, count: str) -> Refuse:
    """ePROM may have carried out attempt `attempt_id`: to the dead-letter queue for a person to check (`count`: the
    metric, e.g. OrdersAmbiguous), with the attempt a redrive takes over from."""
    return Refuse(reason, AMBIGUOUS, attributes={AMBIGUOUS_ATTEMPT_ID: attempt_id}, count=count)


@dataclass(frozen=True)
class RetryPolicy:
    base_delay_seconds: int
    max_delay_seconds: int
    window_seconds: float


def backoff_seconds(attempt: int, *, base: int, cap: int, retry_after: float | None = None) -> int:
    """Exponential from `base` to `cap` with jitter (a quarter at most) inside the cap, so a backlog's retries spread
    out without ever passing the cap; never sooner than a Retry-After the other side asked for."""
    delay = min(cap, base * 2 ** min(max(attempt, 1) - 1, 30))
    delay = min(cap, delay * random.uniform(1, 1.25))  # noqa: S311 - spreading retries, not cryptography
    return _visibility(max(delay, retry_after or 0))


def flow_control_seconds(due_in: float, *, spread: float) -> int:
    """When a message that ePROM's pace held back is due, spread over `spread` seconds (one slot per message that
    came back at once), without growth: it was not a failure."""
    return _visibility(due_in + random.uniform(0, spread))  # noqa: S311 - spreading retries, not cryptography


def _visibility(seconds: float) -> int:
    return max(0, min(math.ceil(seconds), MAX_RETRY_DELAY_SECONDS))


@dataclass(frozen=True)
class RetryingConsumer:
    """`handle(record, ends_at)` gives each record's verdict (`ends_at`: epoch seconds when the invocation ends);
    `announce_refusal` is told of each refused message before it goes to the dead-letter queue (if either fails
    the message is retried instead). `name` prefixes the metrics: {name}Refused (dimension ReasonClass),
    {name}Retried, {name}RetryAgeSeconds. `workers`: records handled at once (the placer's waits are ePROM's)."""

    name: str
    handle: Callable[[SqsRecord, float], Verdict]
    dead_letters: DeadLetterQueue
    queue: QueueVisibility
    policy: RetryPolicy
    announce_refusal: Callable[[SqsRecord, Refuse], None] = lambda record, refusal: None
    workers: ThreadPoolExecutor | None = None
    flow_control_spread_seconds: float = 0.0

    def consume(self, event: dict[str, Any], remaining_seconds: float) -> dict[str, Any]:
        """Lambda's SQS event in, its partial batch response out: only records to retry are reported."""
        ends_at = time.time() + remaining_seconds
        records = [SqsRecord.of(record) for record in event["Records"]]
        if self.workers is None:
            verdicts: Sequence[Verdict] = [self.process(record, ends_at) for record in records]
        else:
            verdicts = list(self.workers.map(lambda record: self.process(record, ends_at), records))
        retried = [r for r, v in zip(records, verdicts, strict=True) if isinstance(v, RetryLater)]
        return {"batchItemFailures": [{"itemIdentifier": record.message_id} for record in retried]}

    def process(self, record: SqsRecord, ends_at: float) -> Verdict:
        """The record's verdict, carried out; the verdict as it ended (a refusal that could not be sent is retried)."""
        logger.thread_safe_append_keys(message_id=record.message_id)
        try:
            try:
                verdict = self.handle(record, ends_at)
            except Exception as error:  # the type only: a message could quote what it failed on
                logger.error("message failed", error_type=type(error).__name__)
                verdict = RetryLater(f"unexpected {type(error).__name__}")
            if isinstance(verdict, RetryLater) and record.age_seconds() >= self.policy.window_seconds:
                verdict = self._given_up(verdict)
            return self._carry_out(record, verdict)
        finally:
            logger.thread_safe_clear_keys()

    def _given_up(self, retry: RetryLater) -> Refuse:
        hours = self.policy.window_seconds / 3600
        return Refuse(
            f"retries exhausted: still failing after {hours:g} h; last error: {retry.reason}", RETRIES_EXHAUSTED
        )

    def _carry_out(self, record: SqsRecord, verdict: Verdict) -> Verdict:
        if verdict.count:
            _count(verdict.count)
        match verdict:
            case Done(log, log_keys=keys):
                logger.info(log, extra=keys)
            case Refuse():
                try:
                    self._refuse(record, verdict)
                except Exception as error:  # SQS delivers it again when its visibility timeout ends
                    logger.error("could not dead-letter the message", error_type=type(error).__name__)
                    return RetryLater(f"could not dead-letter the message ({type(error).__name__})")
            case RetryLater():
                self._retry_later(record, verdict)
        return verdict

    def _refuse(self, record: SqsRecord, refusal: Refuse) -> None:
        self.announce_refusal(record, refusal)
        self.dead_letters.send(record.body, refusal.reason, refusal.rejection_class, refusal.attributes,
                               attributes=record.message_attributes)  # fmt: skip
        logger.warning("message refused", rejection_reason=refusal.reason, rejection_class=refusal.rejection_class)
        refused = f"{self.name}Refused"
        with single_metric(name=refused, unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as m:
            m.add_dimension(name="ReasonClass", value=refusal.rejection_class)

    def _retry_later(self, record: SqsRecord, retry: RetryLater) -> None:
        if retry.flow_control:
            delay = flow_control_seconds(retry.retry_after_seconds or 0, spread=self.flow_control_spread_seconds)
        else:
            delay = backoff_seconds(
                record.receive_count,
                base=self.policy.base_delay_seconds,
                cap=self.policy.max_delay_seconds,
                retry_after=retry.retry_after_seconds,
            )
        try:
            self.queue.retry_after(record.event_source_arn, record.receipt_handle, delay)
        except Exception as error:  # the queue's own visibility timeout then applies: retried all the same
            logger.warning("could not set the retry delay", error_type=type(error).__name__)
        logger.warning(
            "message will be retried",
            reason=retry.reason,
            attempt=record.receive_count,
            retry_in_seconds=delay,
            flow_control=retry.flow_control,
        )
        _count(f"{self.name}Retried")
        _add(f"{self.name}RetryAgeSeconds", MetricUnit.Seconds, round(record.age_seconds()))


# Records run on worker threads, and Metrics.add_metric is not thread-safe: two threads adding a metric name for
# the first time each create its entry, and one count is lost.
_metrics_lock = threading.Lock()


def _count(name: str) -> None:
    _add(name, MetricUnit.Count, 1)


def _add(name: str, unit: MetricUnit, value: float) -> None:
    with _metrics_lock:
        metrics.add_metric(name=name, unit=unit, value=value)
