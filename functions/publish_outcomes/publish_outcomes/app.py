"""PublishOutcomesFunction: FormOrdersTable's stream -> outcome events on OutcomeBus (+ signed-document jobs).

Partial batch failures: only the records that failed are retried (the event source bisects a failing batch and,
after its retries, sends what is left to its on-failure destination).
"""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from eprom.outcomes import OutcomeBus

from publish_outcomes.jobs import SignedDocumentQueue
from publish_outcomes.publishing import publish
from publish_outcomes.settings import PublisherSettings

settings = PublisherSettings.from_environment()
logger = Logger()
metrics = Metrics()
bus = OutcomeBus(settings.outcome_bus_name)
jobs = SignedDocumentQueue(settings.signed_document_queue_url)
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def publish_record(record: DynamoDBRecord) -> None:
    stream = record.dynamodb
    publish(
        stream.old_image if stream else None,
        stream.new_image if stream else None,
        bus=bus,
        jobs=jobs,
        bucket=settings.form_results_bucket,
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=publish_record, processor=processor, context=context)
