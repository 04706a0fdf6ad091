"""Outcome events for upstream that missed them: re-published from FormOrdersTable, or moved back from
OutcomeDeliveryDeadLetterQueue to OutcomeQueue.

A re-published event is made by the publisher's own derivation (eprom.outcomes.item_outcomes) from the item as it is
now, so it carries the eventId the publisher gave that fact: a consumer that has it already drops it (architecture.md,
"Results to upstream"). It tells the order's current state: its status as the last status change, the first form
return, the signed document (an earlier status, superseded, is not told again), and `occurredAt` is the item's last
change where the item keeps no earlier time.
"""

from collections.abc import Iterator
from datetime import datetime

from eprom.order_item import OrderItem
from eprom.outcome_bus import OutcomeBus
from eprom.outcomes import OutcomeDetail, as_events, item_outcomes

from eprom_cli import orders
from eprom_cli.target import Target, TargetError


def items_changed_between(target: Target, since: datetime, until: datetime) -> Iterator[OrderItem]:
    """Items whose last change (`updatedAt`, UTC ISO 8601 text) lies in [since, until): a Scan, an operator's tool."""
    for item in orders.store(target).all_items():
        if item.updated_at and since <= datetime.fromisoformat(item.updated_at) < until:
            yield item


def republish(target: Target, items: list[OrderItem]) -> list[OutcomeDetail]:
    """Every item's current facts put on OutcomeBus again, with the eventIds the publisher derived."""
    if not target.outcome_bus_name:
        raise TargetError(f"stack {target.name} has no OutcomeBusName output: deploy the current template")
    details = [detail for item in items for detail in item_outcomes(None, item, bucket=target.bucket)]
    bus = OutcomeBus(target.outcome_bus_name)
    bus.client = target.client("events")  # the operator's session, not the functions' default one
    bus.put(as_events(details))
    return details


def redrive_deliveries(target: Target) -> int:
    """Move what EventBridge could not deliver (OutcomeDeliveryDeadLetterQueue: the events as OutcomeQueue would have
    had them) to OutcomeQueue, each deleted only after it was sent. How many were moved."""
    if not (target.outcome_delivery_dead_letter_queue_url and target.outcome_queue_url):
        raise TargetError(f"stack {target.name} lacks the OutcomeQueueUrl or OutcomeDeliveryDeadLetterQueueUrl "
                          "output: deploy the current template")  # fmt: skip
    sqs, moved = target.client("sqs"), 0
    while batch := sqs.receive_message(QueueUrl=target.outcome_delivery_dead_letter_queue_url, MaxNumberOfMessages=10,
                                       VisibilityTimeout=60, WaitTimeSeconds=1).get("Messages", []):  # fmt: skip
        for message in batch:
            # only the event: EventBridge's attributes (RULE_ARN, ERROR_CODE, ...) describe the failed delivery
            sqs.send_message(QueueUrl=target.outcome_queue_url, MessageBody=message["Body"])
            sqs.delete_message(QueueUrl=target.outcome_delivery_dead_letter_queue_url,
                               ReceiptHandle=message["ReceiptHandle"])  # fmt: skip
            moved += 1
    return moved
