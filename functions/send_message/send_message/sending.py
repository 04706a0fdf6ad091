"""One record of MessageQueue: validate the message, send it through ePROM at most once per messageReference, record
it, and say what becomes of the message (a Verdict, carried out by eprom.retrying_consumer).

The same mechanism as the placer's (eprom.claims): the message's item in MessagesTable is the claim on its
messageReference, and only the attempt that holds it sends. A letter's documents are checked while the claim is held
(a message sent before is never refused because its PDFs have expired since): a missing one, one that is not a whole
PDF or is too large is refused before ePROM is called. ePROM's answer goes into the item, which the claim becomes;
a letter is then linked to its messageToCitizenId, for its callbacks (eprom.message_store). An attempt that ePROM
may have carried out (Ambiguous) is parked in the DLQ for a person; its claim stays, so every other message of the
reference is parked too, until a person redrives a parked message.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from eprom.aws_clients import AWS_CALL_MAX_SECONDS
from eprom.citizen_messages import Letter, LetterAnswer, MessageToCitizen, message_reference_and_kind, read_message
from eprom.claims import AMBIGUOUS, Claim, fingerprint
from eprom.document_collection import DocumentContent, LetterBody, document_collection
from eprom.eprom_client import (
    Accepted,
    Ambiguous,
    Deferred,
    EpromClient,
    LetterResult,
    Refused,
    Transient,
    UnsecureMessageResult,
)
from eprom.message_documents import DocumentRefused, MessageDocuments
from eprom.message_store import ACCEPTED, NOT_DELIVERED, SENT, MessageStore, sent_letter
from eprom.outcome_bus import OutcomeBus
from eprom.queues import SqsRecord
from eprom.reading import Unreadable
from eprom.refusal_events import message_refused_outcome
from eprom.retrying_consumer import Attempt, Done, Refuse, RetryLater, Verdict, parked

REUSED_MESSAGE_REFERENCE = "messageReference was already used for a message with other content"
BEING_SENT = "a message with this messageReference is being sent right now"
_KIND_NAMES = {"letter": "letter", "sms": "SMS", "email": "e-mail"}


@dataclass(frozen=True)
class MessageSender:
    eprom: EpromClient
    store: MessageStore
    documents: MessageDocuments
    outcomes: OutcomeBus
    fingerprint_key: Callable[[], bytes]
    allow_synthetic_national_ids: bool
    allow_test_mode_orders: bool

    def handle(self, record: SqsRecord, ends_at: float) -> Verdict:
        """The message's verdict. `ends_at`: epoch seconds when the invocation ends."""
        try:
            message = read_message(
                record.body,
                allow_synthetic_national_ids=self.allow_synthetic_national_ids,
                allow_test_mode_orders=self.allow_test_mode_orders,
            )
        except Unreadable as problem:
            return Refuse(f"invalid message: {problem}", "InvalidMessage")
        except Exception as error:  # anything else reading our input is the message's fault too: never retried
            return Refuse(f"invalid message: unreadable ({type(error).__name__})", "InvalidMessage")
        return self.send(message, Attempt.of(record, ends_at))

    def announce_refusal(self, record: SqsRecord, refusal: Refuse) -> None:
        """MessageRefused on OutcomeBus, before the message goes to the DLQ: a repeat has the same eventId."""
        reference, kind = message_reference_and_kind(record.body)
        self.outcomes.put(
            [
                message_refused_outcome(
                    message_id=record.message_id,
                    sent_at=record.sent_at,
                    message_reference=reference,
                    kind=kind,
                    rejection_class=refusal.rejection_class,
                    rejection_reason=refusal.reason,
                )
            ]
        )

    def send(self, message: MessageToCitizen, attempt: Attempt) -> Verdict:
        reference = message.message_reference
        content = fingerprint(message.fingerprint_content(), self.fingerprint_key())
        claims = self.store.claims
        holder = claims.take(
            reference,
            attempt_id=attempt.id,
            fingerprint=content,
            sending_until=attempt.sending_until,
            expires_at=self.store.expires_at(),
            replacing=attempt.replacing,
            attributes={"kind": message.kind},
        )
        if holder is not None:
            return self._claimed_before(message, holder, content)
        # ePROM's answer must leave time for the writes that record it before the invocation ends.
        answer_by = attempt.sending_until - 2 * AWS_CALL_MAX_SECONDS
        try:
            result = self._send(message, answer_by)
        except DocumentRefused as refused:
            claims.release(reference, attempt.id)
            return Refuse(str(refused), "InvalidMessage")
        except Exception:
            claims.release(reference, attempt.id)  # nothing reached ePROM
            raise
        match result:
            case Accepted(answer):
                return self._sent(message, answer if isinstance(answer, LetterAnswer) else None)
            case Refused(reason):
                claims.release(reference, attempt.id)
                return Refuse(reason, "RefusedByEprom")
            case Ambiguous(reason):
                reason = _ambiguous_reason(reason, message, datetime.now(UTC))
                claims.settle_ambiguous(reference, attempt.id, reason)
                return parked(reason, attempt.id, count="MessagesAmbiguous")
            case Deferred(reason, due_in_seconds):
                claims.release(reference, attempt.id)
                return RetryLater(reason, due_in_seconds, flow_control=True)
            case Transient(reason, retry_after_seconds):
                claims.release(reference, attempt.id)
                return RetryLater(reason, retry_after_seconds)
        raise AssertionError("unreachable: the client returns one of the cases above")

    def _send(self, message: MessageToCitizen, answer_by: float) -> LetterResult | UnsecureMessageResult:
        if isinstance(message, Letter):
            return self.eprom.send_letter(self._letter_body(message), answer_by=answer_by)
        if message.kind == "sms":
            return self.eprom.send_sms(message, answer_by=answer_by)
        return self.eprom.send_email(message, answer_by=answer_by)

    def _letter_body(self, letter: Letter) -> LetterBody:
        """The letter's request, its PDFs checked (DocumentRefused) and streamed in as it is sent."""
        checked: dict[int, DocumentContent] = {}
        for index, document in enumerate(letter.documents):  # the message's order, for the reasons' field names
            checked[index] = self.documents.content(self.documents.check(f"documents[{index}]", document),
                                                    document.title)  # fmt: skip
        main = next(index for index, document in enumerate(letter.documents) if document.main)
        ordered = [checked[main], *(pdf for index, pdf in checked.items() if index != main)]
        return LetterBody(
            lambda content: letter.eprom_request(document_collection(ordered[0], ordered[1:], content)),
            ordered,
        )

    def _sent(self, message: MessageToCitizen, answer: LetterAnswer | None) -> Done:
        """ePROM took the message: its answer is recorded (a letter it can send on no channel is NotDelivered)."""
        nothing_sent = answer is not None and answer.nothing_sent  # no channel of the list reaches the person
        channel = answer.notification_channel.name if answer is not None else None
        letter_id = str(answer.message_to_citizen_id) if answer and answer.message_to_citizen_id else None
        self.store.record_sent(
            message.message_reference,
            status=NOT_DELIVERED if nothing_sent else ACCEPTED,
            notification_channel=channel,
            message_to_citizen_id=None if nothing_sent else letter_id,
        )
        log_keys = {"notification_channel": channel or "-", "message_to_citizen_id": letter_id or "-"}
        if nothing_sent:
            return Done("letter not sent: ePROM reaches the person on no channel of its list", log_keys=log_keys)
        return Done(f"{_KIND_NAMES[message.kind]} sent", count="MessagesSent", log_keys=log_keys)

    def _claimed_before(self, message: MessageToCitizen, holder: Claim, content: str) -> Verdict:
        """Another attempt holds the messageReference: its outcome is this message's."""
        reference = message.message_reference
        if holder.fingerprint != content:
            return Refuse(REUSED_MESSAGE_REFERENCE, "ReusedMessageReference")
        if holder.state == SENT:
            if letter_id := sent_letter(holder):  # its invocation may have stopped before the link
                self.store.link(letter_id, reference)
            return Done("message was sent before; nothing to do")
        if holder.state == AMBIGUOUS:
            reason = holder.ambiguous_reason or "ePROM may have sent this message"
            return parked(reason, holder.attempt_id, count="MessagesAmbiguous")
        if not holder.holder_gone():
            return RetryLater(BEING_SENT)
        # Its invocation ended without settling the claim (crashed or timed out), perhaps after ePROM took it.
        detail = "the attempt that sent it ended without an answer (the function stopped)"
        reason = _ambiguous_reason(detail, message, datetime.fromtimestamp(holder.taken_at, UTC))
        if not self.store.claims.settle_ambiguous(reference, holder.attempt_id, reason):
            return RetryLater("the messageReference's claim changed while it was read; trying again")
        return parked(reason, holder.attempt_id, count="MessagesAmbiguous")


def _ambiguous_reason(detail: str, message: MessageToCitizen, attempted_at: datetime) -> str:
    kind = _KIND_NAMES[message.kind]
    return (
        f"ePROM may have sent this {kind}: {detail}. Attempted at {attempted_at:%Y-%m-%dT%H:%M:%SZ}. Look in ePROM "
        f"Admin for a {kind} sent around that time: if there is none, redrive this message; if there is one, delete it "
        "here (a redrive would send it a second time)."
    )
