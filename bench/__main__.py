"""`make bench`: cold import, batch latency, callback overhead and package size, each against a baseline
measured in the same run, printed as one table and written to bench/results/<date>.json.
"""

import argparse
import contextlib
import copy
import io
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
API_KEY = "bench-api-key"
ORDER = ROOT / "events" / "orders" / "basic.json"
SIGNED_DOCUMENT_BYTES = 1_000_000

# Runs in a bare interpreter: only the built layer and the function's code on the path (-I -S), and no bytecode
# written (-B): Lambda's /opt and /var/task are read-only, so only the bytecode the build ships is used. Prints the
# wall time and the process's CPU time of the import.
COLD_IMPORT = """
import sys, time
sys.path[:0] = sys.argv[2:]
started, cpu_started = time.perf_counter(), time.process_time()
if sys.argv[1] == "baseline":
    import boto3
    boto3.client("dynamodb")
else:
    __import__(sys.argv[1])
print(time.perf_counter() - started, time.process_time() - cpu_started)
"""


HANDLERS = {
    "place_order.app": "PlaceOrderFunction",
    "status_callback.app": "StatusCallbackFunction",
    "publish_outcomes.app": "PublishOutcomesFunction",
    "fetch_signed_document.app": "FetchSignedDocumentFunction",
    "send_message.app": "SendMessageFunction",
    "privacy_settings.app": "PrivacySettingsFunction",
}
COMPARED = "compared:"  # the cold-import targets of --compare-build


def cold_import(build_dir: Path, runs: int, compared_build: Path | None = None) -> dict[str, Any]:
    """Each handler of `build_dir` (and of `compared_build`, e.g. a build of the commit before a change) against the
    baseline, interleaved."""
    layer = str(build_dir / "SharedLayer" / "python")
    # Lambda's order: the function's code, then the layer, which bundles the AWS SDK (the runtime's own comes after
    # it and is never imported). The baseline is a bare function bundling the same SDK.
    targets = {"baseline": [layer]} | {
        module: [str(build_dir / function), layer] for module, function in HANDLERS.items()
    }
    if compared_build is not None:
        compared_layer = str(compared_build / "SharedLayer" / "python")
        targets |= {
            COMPARED + module: [str(compared_build / function), compared_layer] for module, function in HANDLERS.items()
        }
    env = {
        "PATH": os.environ["PATH"],
        "AWS_DEFAULT_REGION": "eu-north-1",
        # As Lambda sets them (the role's credentials): no client looks for credentials elsewhere
        "AWS_ACCESS_KEY_ID": "ASIABENCH",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        # As on Lambda, so Powertools takes its Lambda paths.
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "LAMBDA_TASK_ROOT": str(build_dir),
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        "FORM_ORDERS_TABLE": "t",
        "IDEMPOTENCY_TABLE": "i",
        "EPROM_API_BASE_URL": "https://proms.hemitdev.org/promswebapi",
        "EPROM_API_KEY_SECRET_ID": "s",
        "ORDER_FINGERPRINT_SECRET_ID": "f",
        "DEAD_LETTER_QUEUE_URL": "https://sqs.eu-north-1.amazonaws.com/123456789012/dlq",
        "OUTCOME_BUS_NAME": "outcomes",
        "FORM_RESULTS_BUCKET": "results",
        "SIGNED_DOCUMENT_QUEUE_URL": "https://sqs.eu-north-1.amazonaws.com/123456789012/jobs",
        "SIGNED_DOCUMENT_DEAD_LETTER_QUEUE_URL": "https://sqs.eu-north-1.amazonaws.com/123456789012/jobs-dlq",
        "MESSAGES_TABLE": "m",
        "MESSAGE_DOCUMENTS_BUCKET": "documents",
        "MESSAGE_DEAD_LETTER_QUEUE_URL": "https://sqs.eu-north-1.amazonaws.com/123456789012/messages-dlq",
        "POWERTOOLS_SERVICE_NAME": "eprom-integration",
        "POWERTOOLS_METRICS_NAMESPACE": "EpromIntegration",
        "PYDANTIC_DISABLE_PLUGINS": "true",  # as template.yaml's Globals
    }
    python = str(Path(sysconfig.get_config_var("BINDIR"), "python3"))
    seconds: dict[str, list[float]] = {name: [] for name in targets}
    cpu_seconds: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(runs):  # interleaved, so load on the machine hits all alike
        for name, path in targets.items():
            out = subprocess.run(  # noqa: S603 - our own interpreter
                [python, "-B", "-I", "-S", "-c", COLD_IMPORT, name.removeprefix(COMPARED), *path],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            wall, cpu = out.strip().splitlines()[-1].split()
            seconds[name].append(float(wall))
            cpu_seconds[name].append(float(cpu))
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    cpu_medians = {name: statistics.median(values) for name, values in cpu_seconds.items()}
    return {
        "runs": runs,
        "median_ms": {name: round(value * 1000, 1) for name, value in medians.items()},
        "ratio": {name: round(medians[name] / medians["baseline"], 2) for name in targets if name != "baseline"},
        # The same imports by the CPU time they took: what other work on a shared machine does not stretch
        "median_cpu_ms": {name: round(value * 1000, 1) for name, value in cpu_medians.items()},
        "ratio_cpu": {
            name: round(cpu_medians[name] / cpu_medians["baseline"], 2) for name in targets if name != "baseline"
        },
    }


class Stack:
    """moto and the ePROM simulator as processes of their own (as DynamoDB and ePROM are not in the function's
    process on Lambda, and here they would otherwise share its GIL), template.yaml's resources, and the handlers
    imported in this process with that setup."""

    simulator_latency = 0.2
    # ePROM's pace at the most a stage takes (EpromRequestsPerSecond's MaxValue): the batch and its bare requests
    # both wait for their slots of it
    requests_per_second = 100

    def __enter__(self) -> "Stack":
        self._parts: list[Any] = []
        try:
            self._start_all()
        except BaseException:
            self.__exit__()  # no moto or simulator left running behind a failed start
            raise
        return self

    def _start_all(self) -> None:
        from local.stack import (
            FORM_ID,
            ServerProcess,
            functions_environment,
            handler_module,
            import_handlers,
            start_aws,
        )

        self.aws = start_aws(API_KEY, own_process=True)
        self._parts.append(self.aws)
        self.resources = self.aws.resources
        eprom = ServerProcess(
            "local.eprom_simulator", "--api-key", API_KEY, "--form", FORM_ID,
            "--latency", str(self.simulator_latency),
            "--every-document-exists", "--document-bytes", str(SIGNED_DOCUMENT_BYTES),
        )  # fmt: skip
        self._parts.append(eprom)
        self.eprom_url = eprom.url
        self.log = io.StringIO()
        with contextlib.redirect_stdout(self.log):  # the handlers' Logger writes where stdout was at import
            settings = {"PYDANTIC_DISABLE_PLUGINS": "true", "EPROM_REQUESTS_PER_SECOND": str(self.requests_per_second)}
            handlers = import_handlers(functions_environment(self.aws, self.eprom_url, settings))
        self.placer, self.callback = handlers.place_order, handlers.status_callback
        self.publisher, self.fetcher = handlers.publish_outcomes, handlers.fetch_signed_document
        callback = handler_module("StatusCallbackFunction")
        self.callback_clients = [callback.store.client, callback.results.client]  # the AWS calls it makes

    def __exit__(self, *_: object) -> None:
        for part in reversed(self._parts):
            part.stop()

    def quietly(self, function: Any, *args: Any) -> Any:
        with contextlib.redirect_stdout(self.log):
            result = function(*args)
        self.log.seek(0)
        self.log.truncate()
        return result


def sqs_event(count: int) -> dict[str, Any]:
    template = json.loads((ROOT / "events" / "place-order-sqs.json").read_text())["Records"][0]
    order = json.loads(ORDER.read_text())
    records = []
    for _ in range(count):
        reference = f"bench-{uuid.uuid4()}"
        body = order | {"orderReference": reference, "metadata": {"orderReference": reference}}
        attributes = template["attributes"] | {"SentTimestamp": str(int(time.time() * 1000))}
        records.append(template | {"messageId": str(uuid.uuid4()), "body": json.dumps(body), "attributes": attributes})
    return {"Records": records}


def batch_latency(stack: Stack, repeats: int) -> dict[str, Any]:
    """A batch of 10 against one order, and against the rig: the same batch's requests (each order's DynamoDB calls,
    its slot of ePROM's pace and ePROM's POST) made bare on as many threads. moto and ePROM's stand-in share the
    machine's CPUs, so 10 orders at once cost more than one even with no code of ours; the rig ratio leaves that out."""
    from local.lambda_runtime import LambdaContext

    stack.quietly(stack.placer, sqs_event(1), LambdaContext("PlaceOrderFunction"))  # warm
    bare_batch = _bare_batch(stack)
    bare_batch(1)  # warm
    timings: dict[str, list[float]] = {"single": [], "batch_of_10": [], "bare_batch_of_10": []}
    cpu: dict[str, list[float]] = {"single": [], "batch_of_10": []}
    for _ in range(repeats):
        for name, count in (("single", 1), ("batch_of_10", 10)):
            event = sqs_event(count)
            started, cpu_started = time.perf_counter(), time.process_time()
            response = stack.quietly(stack.placer, event, LambdaContext("PlaceOrderFunction"))
            timings[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - cpu_started)  # this process only: not moto, not ePROM
            assert response == {"batchItemFailures": []}, response
        started = time.perf_counter()
        bare_batch(10)
        timings["bare_batch_of_10"].append(time.perf_counter() - started)
    medians = {name: statistics.median(values) for name, values in timings.items()}
    return {
        "epromLatencyMs": stack.simulator_latency * 1000,
        "requestsPerSecond": stack.requests_per_second,
        "repeats": repeats,
        "median_ms": {name: round(value * 1000, 1) for name, value in medians.items()},
        "median_cpu_ms": {name: round(statistics.median(values) * 1000, 1) for name, values in cpu.items()},
        "ratio": round(medians["batch_of_10"] / medians["single"], 2),
        "ratio_to_rig": round(medians["batch_of_10"] / medians["bare_batch_of_10"], 2),
    }


def _bare_batch(stack: Stack) -> Any:
    """`count` orders' requests with no code of ours, each order on its own thread, as PlaceOrderFunction makes them
    (place_order/placing.py): the orderReference's claim (a conditional PutItem), the orderReference index queried, a
    slot of ePROM's pace taken (a conditional UpdateItem, and a second when the pace was idle) and waited for,
    ePROM's POST, the claim settled with ePROM's answer, and the order's item (conditional UpdateItems)."""
    from concurrent.futures import ThreadPoolExecutor

    import boto3
    import requests
    from eprom.orders import read_order
    from eprom.pacer import PACE_KEY

    dynamodb, session = boto3.client("dynamodb"), requests.Session()
    orders, claims = stack.resources["FORM_ORDERS_TABLE"], stack.resources["IDEMPOTENCY_TABLE"]
    order = read_order(ORDER.read_text(), allow_synthetic_national_ids=False, allow_test_mode_orders=False)
    request = order.eprom_request()
    headers = {"Authorization": f"Basic {API_KEY}", "Content-Type": "application/json;charset=utf-8"}
    interval = 1 / stack.requests_per_second
    pace = {  # the placer's own pace item: the bare orders take their slots as the batch's do, from the same state
        "TableName": claims,
        "Key": {"id": {"S": PACE_KEY}},
        "ExpressionAttributeNames": {"#next": "nextSlotAt", "#interval": "interval"},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    taken = "SET #next = #next + #interval"
    restarted = "SET #next = :after, #interval = if_not_exists(#interval, :interval)"
    settled = (
        "SET #state = :placed, #formOrderId = :formOrderId, #fingerprint = :fingerprint, "
        "#expiration = if_not_exists(#expiration, :expiration), #answer = :answer REMOVE #sendingUntil"
    )
    recorded = (
        "#status = if_not_exists(#status, :placed), #updatedAt = if_not_exists(#updatedAt, :now), "
        "#createdAt = if_not_exists(#createdAt, :now), #expiresAt = if_not_exists(#expiresAt, :expiresAt)"
    )

    def pace_slot() -> float:
        """The pace's next slot (epoch seconds), by the requests eprom/pacer.py makes."""
        for _ in range(5):
            now = time.time()
            recent = {":recent": {"N": f"{now - 0.5:.6f}"}}
            try:
                old = dynamodb.update_item(
                    **pace,
                    UpdateExpression=taken,
                    ConditionExpression="#next >= :recent AND #next <= :latest",
                    ExpressionAttributeValues=recent | {":latest": {"N": f"{now + 60:.6f}"}},
                    ReturnValues="ALL_OLD",
                )
                return float(old["Attributes"]["nextSlotAt"]["N"])
            except dynamodb.exceptions.ConditionalCheckFailedException:
                pass
            try:  # idle: its slot is now
                after = {":after": {"N": f"{now + interval:.6f}"}, ":interval": {"N": f"{interval:.6f}"}}
                dynamodb.update_item(
                    **pace,
                    UpdateExpression=restarted,
                    ConditionExpression="attribute_not_exists(#next) OR #next < :recent",
                    ExpressionAttributeValues=recent | after,
                )
                return now
            except dynamodb.exceptions.ConditionalCheckFailedException:
                continue
        raise RuntimeError("the pace kept changing")

    def one_order(_: int) -> None:
        reference, now = f"bare-{uuid.uuid4()}", time.time()
        claim = {"id": {"S": f"orderReference#{reference}"}}
        fingerprint = {"S": "hmac-sha256:" + "0" * 64}
        expiration = {"N": str(int(now) + 180 * 86400)}
        dynamodb.put_item(
            TableName=claims,
            Item=claim
            | {
                "attemptId": {"S": str(uuid.uuid4())},
                "state": {"S": "Sending"},
                "fingerprint": fingerprint,
                "takenAt": {"N": str(now)},
                "sendingUntil": {"N": str(now + 60)},
                "expiration": expiration,
            },
            ConditionExpression="attribute_not_exists(#id)",
            ExpressionAttributeNames={"#id": "id"},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        dynamodb.query(
            TableName=orders,
            IndexName="orderReference-index",
            KeyConditionExpression="orderReference = :ref",
            ExpressionAttributeValues={":ref": {"S": reference}},
        )
        time.sleep(max(0.0, pace_slot() - time.time()))
        answer = session.post(f"{stack.eprom_url}/api/v2/formorder", data=request, headers=headers, timeout=10)
        assert answer.status_code == 200, answer.status_code
        placed = answer.json()
        kept = {name: placed.get(name) for name in ("id", "singleUseCode", "loginUrl", "notificationChannel")}
        names = ("state", "formOrderId", "fingerprint", "expiration", "answer", "sendingUntil")
        dynamodb.update_item(
            TableName=claims,
            Key=claim,
            UpdateExpression=settled,
            ExpressionAttributeNames={f"#{name}": name for name in names},
            ExpressionAttributeValues={
                ":placed": {"S": "Placed"},
                ":formOrderId": {"S": placed["id"]},
                ":fingerprint": fingerprint,
                ":expiration": expiration,
                ":answer": {"S": json.dumps(kept)},
            },
        )
        values = {
            "orderReference": reference,
            "orderFingerprint": fingerprint["S"],
            "formId": placed["formId"],
            "loginUrl": placed["loginUrl"],
            "preferredNotificationChannel": "Helsenorge",
            "placedAt": datetime.now(UTC).isoformat(),
        }
        dynamodb.update_item(
            TableName=orders,
            Key={"formOrderId": {"S": placed["id"]}},
            UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in values) + ", " + recorded,
            ConditionExpression="attribute_not_exists(#orderReference)",
            ExpressionAttributeNames={
                f"#{name}": name for name in [*values, "status", "updatedAt", "createdAt", "expiresAt"]
            },
            ExpressionAttributeValues={f":{name}": {"S": value} for name, value in values.items()}
            | {":placed": {"S": "Placed"}, ":now": {"S": values["placedAt"]}, ":expiresAt": expiration},
        )

    pool = ThreadPoolExecutor(max_workers=10)

    def bare_batch(count: int) -> None:
        list(pool.map(one_order, range(count)))

    return bare_batch


def callback_overhead(stack: Stack, calls: int) -> dict[str, Any]:
    """A status callback against a bare update_item of the same fields, and against its own requests sent bare."""
    import boto3

    dynamodb = boto3.client("dynamodb")
    table = stack.resources["FORM_ORDERS_TABLE"]
    handler_call, own_requests = _callback_and_its_requests(stack, "callback-ordered.json")

    def bare_write() -> None:  # the one write the handler must do anyway
        dynamodb.update_item(
            TableName=table,
            Key={"formOrderId": {"S": str(uuid.uuid4())}},
            UpdateExpression="SET #s = :s, notificationChannel = :c, statusErrorCode = :e, "
            "statusTimestampUtc = :t, updatedAt = :u",
            ConditionExpression="attribute_not_exists(#s) OR #s IN (:p)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":s": {"S": "Ordered"},
                ":c": {"S": "Helsenorge"},
                ":e": {"S": "None"},
                ":t": {"S": "2023-03-29T08:20:10.180433+00:00"},
                ":u": {"S": datetime.now(UTC).isoformat()},
                ":p": {"S": "Placed"},
            },
        )

    named = {"handler": handler_call, "bare_update_item": bare_write, "own_requests_bare": own_requests}
    summary = _interleaved(calls, named)
    return {
        "calls": calls,
        **summary,
        "ratio_p50": round(summary["handler"]["p50_ms"] / summary["bare_update_item"]["p50_ms"], 2),
        "ratio_p99": round(summary["handler"]["p99_ms"] / summary["bare_update_item"]["p99_ms"], 2),
        **_ratios_to_own_requests(summary),
    }


def _callback_and_its_requests(stack: Stack, example: str) -> tuple[Any, Any]:
    """A call of the callback handler with events/`example` for a new formOrderId, and a call sending the requests
    one such call made to AWS (botocore's parameters for each, as recorded from the handler's own clients) bare,
    for a new formOrderId: what moto costs the handler, without our code."""
    from botocore import xform_name

    from local.lambda_runtime import LambdaContext

    event = json.loads((ROOT / "events" / example).read_text())
    body = json.loads(event["body"]) | {"apiKey": API_KEY}

    def handler_call(form_order_id: str | None = None) -> None:
        event["body"] = json.dumps(body | {"formOrderId": form_order_id or str(uuid.uuid4())})
        assert stack.quietly(stack.callback, event, LambdaContext("StatusCallbackFunction"))["statusCode"] == 200

    handler_call()  # warm: the secret read, the clients made
    recorded, recorded_id = [], str(uuid.uuid4())
    recorders = []
    for client in stack.callback_clients:

        def record(params: dict[str, Any], model: Any, client: Any = client, **_: Any) -> None:
            recorded.append((getattr(client, xform_name(model.name)), copy.deepcopy(params)))

        client.meta.events.register("provide-client-params", record)
        recorders.append((client, record))
    handler_call(recorded_id)
    for client, record in recorders:
        client.meta.events.unregister("provide-client-params", record)
    assert recorded, "the handler made no AWS request"

    def own_requests_bare() -> None:
        form_order_id = str(uuid.uuid4())
        for operation, params in recorded:
            operation(**_with_id(params, recorded_id, form_order_id))

    return handler_call, own_requests_bare


def _with_id(value: Any, old: str, new: str) -> Any:
    """`value` with every occurrence of the id `old` (keys, bodies) replaced by `new`."""
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, bytes):
        return value.replace(old.encode(), new.encode())
    if isinstance(value, dict):
        return {name: _with_id(item, old, new) for name, item in value.items()}
    if isinstance(value, list):
        return [_with_id(item, old, new) for item in value]
    return value


def _ratios_to_own_requests(summary: dict[str, dict[str, float]]) -> dict[str, float]:
    own = summary["own_requests_bare"]
    return {
        "ratio_to_own_requests": round(summary["handler"]["p50_ms"] / own["p50_ms"], 2),
        "ratio_to_own_requests_p99": round(summary["handler"]["p99_ms"] / own["p99_ms"], 2),
    }


def _interleaved(calls: int, named: dict[str, Any], warm_up: int = 20) -> dict[str, dict[str, float]]:
    """p50 and p99 of each callable, warmed, then timed in turn `calls` times (so load hits all alike)."""
    for _ in range(warm_up):
        for call in named.values():
            call()
    timings: dict[str, list[float]] = {name: [] for name in named}
    for _ in range(calls):
        for name, call in named.items():
            started = time.perf_counter()
            call()
            timings[name].append(time.perf_counter() - started)
    return {
        name: {
            "p50_ms": round(statistics.median(values) * 1000, 2),
            "p99_ms": round(statistics.quantiles(values, n=100)[98] * 1000, 2),
        }
        for name, values in timings.items()
    }


def form_return_overhead(stack: Stack, calls: int) -> dict[str, Any]:
    """A form return (answers to S3, then the item) against the two writes it cannot do without, and against its own
    requests sent bare."""
    import boto3

    body = json.loads(json.loads((ROOT / "events" / "callback-completed.json").read_text())["body"])
    document = json.dumps(body | {"apiKey": API_KEY}).encode()
    s3, dynamodb = boto3.client("s3"), boto3.client("dynamodb")
    handler_call, own_requests = _callback_and_its_requests(stack, "callback-completed.json")

    def bare_writes() -> None:
        form_order_id = str(uuid.uuid4())
        s3.put_object(Bucket=stack.resources["FORM_RESULTS_BUCKET"], Key=f"answers/{form_order_id}.json",
                      Body=document)  # fmt: skip
        dynamodb.update_item(
            TableName=stack.resources["FORM_ORDERS_TABLE"],
            Key={"formOrderId": {"S": form_order_id}},
            UpdateExpression="SET #s = :s, answers = :a, updatedAt = :u",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": "Completed"}, ":u": {"S": datetime.now(UTC).isoformat()},
                                       ":a": {"M": {"key": {"S": f"answers/{form_order_id}.json"}}}},
        )  # fmt: skip

    named = {"handler": handler_call, "bare_put_object_update_item": bare_writes, "own_requests_bare": own_requests}
    summary = _interleaved(calls, named)
    bare = summary["bare_put_object_update_item"]
    return {
        "calls": calls,
        **summary,
        "ratio_p50": round(summary["handler"]["p50_ms"] / bare["p50_ms"], 2),
        "ratio_p99": round(summary["handler"]["p99_ms"] / bare["p99_ms"], 2),
        **_ratios_to_own_requests(summary),
    }


def publisher_per_record(stack: Stack, orders: int) -> dict[str, Any]:
    """PublishOutcomesFunction on `orders` stream records (each one Ordered status: one event), against putting the
    same events on the bus directly, one PutEvents call each, as the publisher does for a one-event record."""
    import boto3
    from eprom.models import EpromCallback
    from eprom.order_store import OrderStore

    from local.lambda_runtime import LambdaContext
    from local.stream_poller import lambda_record

    store = OrderStore(stack.resources["FORM_ORDERS_TABLE"])
    for _ in range(orders):
        store.apply_callback(EpromCallback.model_validate({"formOrderId": str(uuid.uuid4()), "formOrderStatus": 2}))
    streams, events = boto3.client("dynamodbstreams"), boto3.client("events")
    arn = boto3.client("dynamodb").describe_table(TableName=stack.resources["FORM_ORDERS_TABLE"])["Table"][
        "LatestStreamArn"
    ]
    [shard] = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
    records, next_iterator = [], iterator["ShardIterator"]
    while next_iterator and (answer := streams.get_records(ShardIterator=next_iterator, Limit=1000))["Records"]:
        records += [lambda_record(record, arn) for record in answer["Records"]]
        next_iterator = answer.get("NextShardIterator")
    records = records[-orders:]  # the INSERTs just made: one StatusChanged event each
    batches = [records[start : start + 100] for start in range(0, len(records), 100)]
    started, cpu_started = time.perf_counter(), time.process_time()
    for batch in batches:
        assert stack.quietly(stack.publisher, {"Records": batch}, LambdaContext("PublishOutcomesFunction")) == {
            "batchItemFailures": []
        }
    handler_seconds, handler_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    entry = {"EventBusName": stack.resources["OUTCOME_BUS_NAME"], "Source": "bench", "DetailType": "Bench",
             "Detail": json.dumps({"eventId": "x", "status": "Ordered"})}  # fmt: skip
    started = time.perf_counter()
    for _ in records:
        events.put_events(Entries=[entry])
    bare_seconds = time.perf_counter() - started
    return {
        "records": len(records),
        "handler_ms_per_record": round(handler_seconds * 1000 / len(records), 2),
        "handler_cpu_ms_per_record": round(handler_cpu * 1000 / len(records), 2),
        "bare_put_events_ms_per_event": round(bare_seconds * 1000 / len(records), 2),
        "ratio": round(handler_seconds / bare_seconds, 2),
    }


def signed_document_fetch(stack: Stack, calls: int) -> dict[str, Any]:
    """FetchSignedDocumentFunction on one job (a 1 MB PDF: GET from ePROM, into S3, the item pointed at it) against
    the bare GET and put_object it cannot do without."""
    import boto3
    import requests
    from eprom.models import EpromCallback
    from eprom.order_item import ResultPointer
    from eprom.order_store import OrderStore

    from local.lambda_runtime import LambdaContext

    template = json.loads((ROOT / "events" / "signed-document-job-sqs.json").read_text())
    s3, session = boto3.client("s3"), requests.Session()
    store, jobs = OrderStore(stack.resources["FORM_ORDERS_TABLE"]), []
    for _ in range(calls + 5):  # the orders whose forms came back signed (the fetcher fetches only for those)
        job = {"formOrderId": str(uuid.uuid4()), "signedFormId": str(uuid.uuid4())}
        answers = ResultPointer(key=f"answers/{job['formOrderId']}.json", sha256="0" * 64, bytes=2)
        store.apply_callback(
            EpromCallback.model_validate(job | {"formOrderStatus": 0, "formData": "{}"}), answers=answers
        )
        jobs.append(job)

    def handler_call() -> None:
        job = jobs.pop()
        record = template["Records"][0] | {"messageId": str(uuid.uuid4()), "body": json.dumps(job)}
        record["attributes"] = record["attributes"] | {"SentTimestamp": str(int(time.time() * 1000))}
        answer = stack.quietly(stack.fetcher, {"Records": [record]}, LambdaContext("FetchSignedDocumentFunction"))
        assert answer == {"batchItemFailures": []}, answer

    def bare_get_and_put() -> None:
        signed_form_id = str(uuid.uuid4())
        pdf = session.get(f"{stack.eprom_url}/api/ExternalDocument/{signed_form_id}",
                          headers={"Authorization": f"Basic {API_KEY}"}, timeout=10)  # fmt: skip
        assert pdf.status_code == 200 and len(pdf.content) == SIGNED_DOCUMENT_BYTES
        s3.put_object(Bucket=stack.resources["FORM_RESULTS_BUCKET"], Key=f"signed/{signed_form_id}.pdf",
                      Body=pdf.content, ContentType="application/pdf")  # fmt: skip

    summary = _interleaved(calls, {"handler": handler_call, "bare_get_put_object": bare_get_and_put}, warm_up=5)
    bare = summary["bare_get_put_object"]
    return {
        "calls": calls,
        "document_bytes": SIGNED_DOCUMENT_BYTES,
        **summary,
        "ratio_p50": round(summary["handler"]["p50_ms"] / bare["p50_ms"], 2),
        "ratio_p99": round(summary["handler"]["p99_ms"] / bare["p99_ms"], 2),
    }


def make_run(orders: int, *args: str) -> dict[str, Any]:
    """`make run`'s report for `orders` generated orders, placed only (no form returns), none invalid or doubled."""
    with tempfile.TemporaryDirectory() as directory:
        report_path = Path(directory, "report.json")
        subprocess.run(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "local.run", "--no-samples", "--form-return", "none", "--orders", str(orders),
             "--invalid-rate", "0", "--duplicate-rate", "0", "--report", str(report_path), *args],
            cwd=ROOT, env=os.environ, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return json.loads(report_path.read_text())


def pipeline(orders: int, latency: float) -> dict[str, Any]:
    seconds = make_run(orders, "--latency", str(latency))["flow_seconds"]
    return {
        "orders": orders,
        "epromLatencyMs": latency * 1000,
        "seconds": seconds,
        "orders_per_second": round(orders / seconds, 1),
    }


def drain(orders: int, rate_limit: float) -> dict[str, Any]:
    """A backlog of `orders` against an ePROM that takes `rate_limit` orders/s (429 + Retry-After above it), with our
    pace at the same rate: how close to ePROM's rate the stack keeps it, how many POSTs still meet a 429, how long
    ePROM sat idle meanwhile (the local/eprom_simulator.py measure), with nothing lost and nothing ordered twice."""
    report = make_run(
        orders,
        "--rate-limit",
        str(rate_limit),
        "--pace",
        str(rate_limit),
        "--settle-timeout",
        str(orders / rate_limit * 3),
    )
    seconds = report["flow_seconds"]
    simulator = report["simulator"]
    per_reference = simulator["orders_per_reference"]
    posts, refused = simulator["order_posts"], simulator["faults"].get("rate_limited", 0)
    return {
        "orders": orders,
        "rate_limit_per_second": rate_limit,
        "pace_per_second": rate_limit,
        "seconds": seconds,
        "orders_per_second": round(orders / seconds, 2),
        "ratio": round(orders / seconds / rate_limit, 3),
        "posts": posts,
        "refused_429": refused,
        "refused_429_share": round(refused / posts, 4) if posts else 0.0,
        "eprom_idle_seconds": simulator["idle_seconds"],
        "dead_letters": len(report["dead_letters"]),
        "duplicates": sum(count - 1 for count in per_reference.values() if count > 1),
        "placed": len(per_reference),
    }


def package_sizes(build_dir: Path) -> dict[str, Any]:
    from buildtools.verify_build import zipped_size

    return {
        name: {
            "zipped_bytes": zipped_size(build_dir / name),
            "unzipped_bytes": sum(path.stat().st_size for path in (build_dir / name).rglob("*") if path.is_file()),
        }
        for name in ("SharedLayer", "PlaceOrderFunction", "StatusCallbackFunction", "PublishOutcomesFunction",
                     "FetchSignedDocumentFunction", "SendMessageFunction",
                     "PrivacySettingsFunction")
    }  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deployed-build", type=Path, default=ROOT / ".aws-sam" / "build", help="sizes (arm64)")
    parser.add_argument("--host-build", type=Path, default=ROOT / ".aws-sam" / "check", help="imports (this CPU)")
    parser.add_argument("--cold-runs", type=int, default=15)
    parser.add_argument("--cold-import-only", action="store_true", help="measure the cold imports alone")
    parser.add_argument(
        "--compare-build", type=Path, help="another host build whose handlers' imports are measured too"
    )
    parser.add_argument("--batch-repeats", type=int, default=7)
    parser.add_argument("--callback-calls", type=int, default=500)
    parser.add_argument("--pipeline-orders", type=int, default=100)
    parser.add_argument("--document-fetches", type=int, default=60)
    parser.add_argument("--drain-orders", type=int, default=2000)
    # Well below what the local rig can place (the pipeline row: ~6 orders/s with the whole results flow in one
    # process), so the ratio measures the pace, not the rig.
    parser.add_argument("--drain-rate-limit", type=float, default=3, help="ePROM's orders/s and our pace in the drain")
    args = parser.parse_args(argv)

    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    results["cold_import"] = cold_import(args.host_build, args.cold_runs, args.compare_build)
    if args.cold_import_only:
        print("\n".join(_lines(_cold_rows(results["cold_import"]), results)))
        return 0
    with Stack() as stack:
        results["batch_latency"] = batch_latency(stack, args.batch_repeats)
        results["callback_overhead"] = callback_overhead(stack, args.callback_calls)
        results["form_return"] = form_return_overhead(stack, args.callback_calls // 2)
        results["publisher"] = publisher_per_record(stack, 500)
        results["signed_document"] = signed_document_fetch(stack, args.document_fetches)
    results["pipeline"] = pipeline(args.pipeline_orders, latency=0.2)
    results["drain"] = drain(args.drain_orders, args.drain_rate_limit)
    results["package_size"] = package_sizes(args.deployed_build)

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"bench-{results['date'][:19].replace(':', '')}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nwritten to {out.relative_to(ROOT)}")
    return 0


def table(r: dict[str, Any]) -> str:
    batch, callback, drained = r["batch_latency"], r["callback_overhead"], r["drain"]
    rows = [
        *_cold_rows(r["cold_import"]),
        ("one order, ePROM at 200 ms (baseline)", f"{batch['median_ms']['single']} ms", "1.00", ""),
        ("batch of 10 orders", f"{batch['median_ms']['batch_of_10']} ms", f"{batch['ratio']:.2f}", ""),
        ("  the same batch's requests alone, on 10 threads (rig baseline)",
         f"{batch['median_ms']['bare_batch_of_10']} ms", "1.00", ""),
        ("  batch of 10 against the rig baseline", f"{batch['median_ms']['batch_of_10']} ms",
         f"{batch['ratio_to_rig']:.2f}", "<= 1.2"),
        ("  the placer's own CPU: one order / batch of 10",
         f"{batch['median_cpu_ms']['single']} / {batch['median_cpu_ms']['batch_of_10']} ms", "", ""),
        ("bare update_item p50 / p99 (baseline)",
         f"{callback['bare_update_item']['p50_ms']} / {callback['bare_update_item']['p99_ms']} ms", "1.00", ""),
        ("callback handler p50 / p99", f"{callback['handler']['p50_ms']} / {callback['handler']['p99_ms']} ms",
         f"{callback['ratio_p50']:.2f} / {callback['ratio_p99']:.2f}", ""),
        ("  its own request sent bare p50 / p99 (baseline)",
         f"{callback['own_requests_bare']['p50_ms']} / {callback['own_requests_bare']['p99_ms']} ms", "1.00", ""),
        ("  callback handler against its own request",
         f"{callback['handler']['p50_ms']} / {callback['handler']['p99_ms']} ms",
         f"{callback['ratio_to_own_requests']:.2f} / {callback['ratio_to_own_requests_p99']:.2f}", "p50 <= 1.15"),
        ("bare put_object + update_item p50 / p99 (baseline)",
         f"{r['form_return']['bare_put_object_update_item']['p50_ms']} / "
         f"{r['form_return']['bare_put_object_update_item']['p99_ms']} ms", "1.00", ""),
        ("form return callback (S3 + DynamoDB) p50 / p99",
         f"{r['form_return']['handler']['p50_ms']} / {r['form_return']['handler']['p99_ms']} ms",
         f"{r['form_return']['ratio_p50']:.2f} / {r['form_return']['ratio_p99']:.2f}", ""),
        ("  its own requests sent bare p50 / p99 (baseline)",
         f"{r['form_return']['own_requests_bare']['p50_ms']} / {r['form_return']['own_requests_bare']['p99_ms']} ms",
         "1.00", ""),
        ("  form return against its own requests",
         f"{r['form_return']['handler']['p50_ms']} / {r['form_return']['handler']['p99_ms']} ms",
         f"{r['form_return']['ratio_to_own_requests']:.2f} / {r['form_return']['ratio_to_own_requests_p99']:.2f}",
         "p50 <= 1.15"),
        ("bare put_events, per event (baseline)", f"{r['publisher']['bare_put_events_ms_per_event']} ms", "1.00", ""),
        (f"publisher per stream record ({r['publisher']['records']}), wall / own CPU",
         f"{r['publisher']['handler_ms_per_record']} / {r['publisher']['handler_cpu_ms_per_record']} ms",
         f"{r['publisher']['ratio']:.2f}", ""),
        ("bare GET + put_object of a 1 MB PDF p50 / p99 (baseline)",
         f"{r['signed_document']['bare_get_put_object']['p50_ms']} / "
         f"{r['signed_document']['bare_get_put_object']['p99_ms']} ms", "1.00", ""),
        ("signed-document fetch (1 MB) p50 / p99",
         f"{r['signed_document']['handler']['p50_ms']} / {r['signed_document']['handler']['p99_ms']} ms",
         f"{r['signed_document']['ratio_p50']:.2f} / {r['signed_document']['ratio_p99']:.2f}", ""),
        (f"pipeline: {r['pipeline']['orders']} orders through make run",
         f"{r['pipeline']['orders_per_second']} orders/s", "", ""),
        (f"drain {drained['orders']} orders, ePROM and our pace at {drained['rate_limit_per_second']:g}/s (baseline: "
         "ePROM's rate)", f"{drained['orders_per_second']} orders/s", f"{drained['ratio']:.3f}", ">= 0.97"),
        ("  POSTs / answered 429 / ePROM idle",
         f"{drained['posts']} / {drained['refused_429']} ({drained['refused_429_share']:.1%}) / "
         f"{drained['eprom_idle_seconds']} s", "", "429 <= 1 %"),
        ("  placed / in the DLQ / ordered twice",
         f"{drained['placed']} / {drained['dead_letters']} / {drained['duplicates']}", "", "-, 0, 0"),
    ]  # fmt: skip
    for name, size in r["package_size"].items():
        rows.append((f"package: {name} (zipped / unzipped)",
                     f"{_size(size['zipped_bytes'])} / {_size(size['unzipped_bytes'])}", "", ""))  # fmt: skip
    return "\n".join(_lines(rows, r))


def _cold_rows(cold: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows = []
    for module in cold["median_ms"]:
        value = f"{cold['median_ms'][module]} / {cold['median_cpu_ms'][module]} ms"
        if module == "baseline":
            rows.append(("cold import, wall / CPU: boto3 + DynamoDB client (baseline)", value, "1.00 / 1.00", ""))
            continue
        name = HANDLERS[module.removeprefix(COMPARED)] + (" (--compare-build)" if module.startswith(COMPARED) else "")
        ratio = f"{cold['ratio'][module]:.2f} / {cold['ratio_cpu'][module]:.2f}"
        rows.append((f"cold import, wall / CPU: {name}", value, ratio, "<= 1.5"))
    return rows


def _lines(rows: list[tuple[str, str, str, str]], r: dict[str, Any]) -> list[str]:
    width = max(len(row[0]) for row in rows)
    lines = [f"{'measure':<{width}}  {'value':>26}  {'ratio':>11}  target", "-" * (width + 56)]
    lines += [f"{name:<{width}}  {value:>26}  {ratio:>11}  {target}" for name, value, ratio, target in rows]
    lines.append(f"({r['cpus']} CPUs, Python {r['python']}, {r['date']})")
    return lines


def _size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
