"""PublishOutcomesFunction: FormOrdersTable's and MessagesTable's streams -> outcome events on OutcomeBus
(+ signed-document jobs).

Partial batch failures: only the records that failed are retried (the event source bisects a failing batch and,
after its retries, sends what is left to its on-failure destination).
"""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from eprom.message_item import MessageItem
from eprom.order_item import OrderItem
from eprom.outcome_bus import OutcomeBus
from eprom.queues import SignedDocumentQueue

from publish_outcomes.publishing import publish, publish_message
from publish_outcomes.settings import PublisherSettings

settings = PublisherSettings.from_environment()
logger = Logger()
metrics = Metrics()
bus = OutcomeBus(settings.outcome_bus_name)
jobs = SignedDocumentQueue(settings.signed_document_queue_url)
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def publish_record(record: DynamoDBRecord) -> None:
    stream = record.dynamodb
    # Powertools reads the images' typed values ({"S": ...}) as TypeDeserializer does
    old, new = (stream.old_image, stream.new_image) if stream else ({}, {})
    if stream and "messageReference" in stream.keys:  # MessagesTable's
        new_item = MessageItem.model_validate(new) if new else None
        publish_message(MessageItem.model_validate(old) if old else None, new_item, bus=bus)
        return
    publish(
        OrderItem.model_validate(old) if old else None,
        OrderItem.model_validate(new) if new else None,
        bus=bus,
        jobs=jobs,
        bucket=settings.form_results_bucket,
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=publish_record, processor=processor, context=context)
