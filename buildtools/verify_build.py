"""Import and invoke every handler from a `sam build` output, in an interpreter that has nothing but the
function's own code and the built layer on its path (in Lambda's order), against a moto server and the ePROM
simulator. No AWS SDK of the runtime's is on that path: the layer bundles its own (pinned in uv.lock), so a
dependency missing from the layer (boto3, tzdata for Europe/Oslo, ...) fails here.
Usage: python -m buildtools.verify_build .aws-sam/check
"""

import importlib.util
import io
import json
import os
import subprocess
import sys
import sysconfig
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import boto3
from eprom.message_store import ACCEPTED, MessageStore
from eprom.order_item import PLACED
from eprom.order_store import OrderStore

from local.aws_resources import load_template
from local.eprom_simulator import EpromSimulator, signed_pdf
from local.stack import RESERVATION_PVK_ID, functions_environment, simulator_config, start_aws
from local.stream_poller import lambda_record

EVENTS = Path(__file__).resolve().parent.parent / "events"

# Runs in the bare interpreter: -I (no user site, no PYTHONPATH), -S (no site-packages at all), -B (writes no
# bytecode, as Lambda cannot).
CHILD = """
import json, sys
code, layer, module, event_file = sys.argv[1:5]
sys.path[:0] = [code, layer]  # /var/task, /opt/python: nothing else (the layer's own AWS SDK)
import importlib
handler = importlib.import_module(module).lambda_handler
class Context:
    function_name = "verify-build"; function_version = "$LATEST"; memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-north-1:123456789012:function:verify-build"
    aws_request_id = "11111111-2222-4333-8444-555555555555"
    def get_remaining_time_in_millis(self): return 30000
with open(event_file) as f:
    event = json.load(f)
print("RESULT " + json.dumps(handler(event, Context()), default=str))
"""


def main(build_dir: str) -> int:
    built = load_template(Path(build_dir, "template.yaml"))["Resources"]
    layer_dir = Path(build_dir, built["SharedLayer"]["Properties"]["ContentUri"]).resolve()
    below_code = [layer_dir / "python"]
    aws = start_aws()
    resources = aws.resources
    checks: list[tuple[bool, str]] = []
    try:
        with EpromSimulator(simulator_config()) as eprom:
            env = {"PATH": os.environ["PATH"]} | functions_environment(
                aws,
                eprom.base_url,
                {
                    "PYDANTIC_DISABLE_PLUGINS": "true",
                    "AWS_LAMBDA_FUNCTION_NAME": "verify-build",
                    "_X_AMZN_TRACE_ID": "Root=1-00000000-000000000000000000000001;Parent=0000000000000001;Sampled=0",
                },
            )
            order = json.loads((EVENTS / "orders" / "basic.json").read_text()) | {"orderReference": str(uuid.uuid4())}
            sqs = json.loads((EVENTS / "place-order-sqs.json").read_text())
            sqs["Records"][0]["body"] = json.dumps(order)
            placed = invoke(built, "PlaceOrderFunction", build_dir, below_code, sqs, env)
            checks.append((placed == {"batchItemFailures": []}, f"PlaceOrderFunction answered {placed}"))
            store = OrderStore(resources["FORM_ORDERS_TABLE"], client=boto3.client("dynamodb"))
            items = list(store.all_items())
            checks.append((len(items) == 1 and items[0].status == PLACED, "no Placed item after the order"))

            callback = json.loads((EVENTS / "callback-ordered.json").read_text())  # the stack's ApiKey
            replied = invoke(built, "StatusCallbackFunction", build_dir, below_code, callback, env)
            checks.append((replied.get("statusCode") == 200, f"StatusCallbackFunction answered {replied}"))

            stream = boto3.client("dynamodbstreams")
            table = boto3.client("dynamodb").describe_table(TableName=resources["FORM_ORDERS_TABLE"])["Table"]
            [shard] = stream.describe_stream(StreamArn=table["LatestStreamArn"])["StreamDescription"]["Shards"]
            iterator = stream.get_shard_iterator(StreamArn=table["LatestStreamArn"], ShardId=shard["ShardId"],
                                                 ShardIteratorType="TRIM_HORIZON")["ShardIterator"]  # fmt: skip
            records = [lambda_record(record, table["LatestStreamArn"])
                       for record in stream.get_records(ShardIterator=iterator)["Records"]]  # fmt: skip
            published = invoke(built, "PublishOutcomesFunction", build_dir, below_code, {"Records": records}, env)
            checks.append((published == {"batchItemFailures": []}, f"PublishOutcomesFunction answered {published}"))
            outcomes = boto3.client("sqs").receive_message(QueueUrl=resources["OUTCOME_QUEUE_URL"])
            checks.append((bool(outcomes.get("Messages")), "no outcome event reached OutcomeQueue"))

            form_order_id, signed_form_id = items[0].form_order_id, str(uuid.uuid4())
            eprom.documents[signed_form_id] = (0.0, signed_pdf(signed_form_id, 10_000))
            returned = json.loads((EVENTS / "callback-completed.json").read_text())  # signed: the job's signedFormId
            returned["body"] = json.dumps(json.loads(returned["body"]) | {"formOrderId": form_order_id,
                                                                          "signedFormId": signed_form_id})  # fmt: skip
            replied = invoke(built, "StatusCallbackFunction", build_dir, below_code, returned, env)
            checks.append((replied.get("statusCode") == 200, f"StatusCallbackFunction answered {replied}"))
            job = json.loads((EVENTS / "signed-document-job-sqs.json").read_text())
            job["Records"][0]["body"] = json.dumps({"formOrderId": form_order_id, "signedFormId": signed_form_id})
            job["Records"][0]["attributes"]["SentTimestamp"] = str(int(time.time() * 1000))
            fetched = invoke(built, "FetchSignedDocumentFunction", build_dir, below_code, job, env)
            checks.append((fetched == {"batchItemFailures": []}, f"FetchSignedDocumentFunction answered {fetched}"))
            item = store.item(form_order_id)
            checks.append((item is not None and item.signed_document is not None,
                           "no signedDocument on the item after the job"))  # fmt: skip

            # A letter (its PDF streamed from MessageDocumentsBucket), and ePROM's callback about it
            key = f"documents/{uuid.uuid4()}.pdf"
            boto3.client("s3").put_object(Bucket=resources["MESSAGE_DOCUMENTS_BUCKET"], Key=key,
                                          Body=signed_pdf(key, 10_000))  # fmt: skip
            letter = json.loads((EVENTS / "messages" / "letter.json").read_text())
            letter["messageReference"], letter["documents"] = str(uuid.uuid4()), [letter["documents"][0] | {"key": key}]
            sqs["Records"][0]["body"] = json.dumps(letter)
            sent = invoke(built, "SendMessageFunction", build_dir, below_code, sqs, env)
            checks.append((sent == {"batchItemFailures": []}, f"SendMessageFunction answered {sent}"))
            message = MessageStore(resources["MESSAGES_TABLE"], client=boto3.client("dynamodb")).item(
                letter["messageReference"]
            )
            status = message.status if message else None
            checks.append((status == ACCEPTED, f"the letter's item is {status}, not {ACCEPTED}"))
            callback = json.loads((EVENTS / "callback-message-to-citizen.json").read_text())
            letter_id = message.message_to_citizen_id if message else ""
            callback["body"] = json.dumps(json.loads(callback["body"]) | {"messageToCitizenId": letter_id})
            replied = invoke(built, "StatusCallbackFunction", build_dir, below_code, callback, env)
            checks.append((replied.get("statusCode") == 200, f"StatusCallbackFunction answered {replied} (letter)"))
            listing = {"operation": "list", "pvkId": RESERVATION_PVK_ID}  # ePROM's pace, and a multipart upload
            listed = invoke(built, "PrivacySettingsFunction", build_dir, below_code, listing, env)
            checks.append((listed.get("count") == 0, f"PrivacySettingsFunction answered {listed}"))
    finally:
        aws.stop()
    for logical_id in ("SharedLayer", "PlaceOrderFunction", "StatusCallbackFunction", "PublishOutcomesFunction",
                       "FetchSignedDocumentFunction", "SendMessageFunction", "PrivacySettingsFunction"):  # fmt: skip
        missing = uncompiled(Path(build_dir, logical_id))
        checks.append((not missing, f"{logical_id}: {len(missing)} modules without bytecode, e.g. {missing[:3]}"))
    failures = [message for passed, message in checks if not passed]
    for failure in failures:
        print(f"FAILED: {failure}")
    print(f"verify-build: {len(checks) - len(failures)} passed, {len(failures)} failed")
    print(f"layer: {zipped_size(layer_dir):,} bytes zipped")
    return 1 if failures else 0


def zipped_size(directory: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory))
    return buffer.tell()


def uncompiled(directory: Path) -> list[str]:
    """Lambda cannot write bytecode next to the code; what has none is compiled again at every cold start."""
    return [
        str(source.relative_to(directory))
        for source in directory.rglob("*.py")
        if not Path(importlib.util.cache_from_source(str(source))).exists()
    ]


def invoke(
    built: dict[str, Any],
    logical_id: str,
    build_dir: str,
    below_code: list[Path],
    event: dict[str, Any],
    env: dict[str, str],
) -> dict[str, Any]:
    properties = built[logical_id]["Properties"]
    code_dir = Path(build_dir, properties["CodeUri"]).resolve()
    module = properties["Handler"].rsplit(".", 1)[0]
    event_file = Path(build_dir, f"{logical_id}-event.json")
    event_file.write_text(json.dumps(event))
    base_python = Path(sysconfig.get_config_var("BINDIR"), "python3")
    paths = [str(code_dir), *map(str, below_code)]
    completed = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [str(base_python), "-B", "-I", "-S", "-c", CHILD, *paths, module, str(event_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    for line in completed.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
            return result
    sys.stderr.write(completed.stdout[-3000:] + completed.stderr[-3000:])
    return {"error": f"{logical_id} did not run (exit {completed.returncode})"}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
