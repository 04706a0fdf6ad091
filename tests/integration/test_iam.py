"""Each function under its own role from the transformed template (local/iam.py): the calls of a typical flow are
all allowed, every permission a role grants is needed by one of them, and a denied call fails as in AWS."""

import contextlib
import hashlib
import json
import time
import uuid
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from conftest import (
    DEFAULT_SIMULATOR,
    EVENTS,
    failed_ids,
    letter_message,
    order_message,
    sms_message,
    sqs_event,
)
from eprom_cli.target import LocalState, LocalTarget
from test_message_callback import stream_records as message_stream_records
from test_publish_outcomes import stream_records

from local import iam
from local.eprom_simulator import EpromSimulator, signed_pdf
from local.invoke_front import InvokeFront
from local.lambda_runtime import LambdaContext, rest_api_event
from local.sqs_poller import lambda_record
from local.stack import API_KEY, RESERVATION_PVK_ID, STATE_VARIABLES

TEMPLATE = iam.transformed_template()
FUNCTIONS = sorted(k for k, r in TEMPLATE["Resources"].items() if r["Type"] == "AWS::Lambda::Function")
# Managed policies whose every statement the flow below needs too (upstream's, run with iam.acting_as)
CLIENT_POLICIES = ["PrivacySettingsClientPolicy"]


def _receive(url: str, marker: str) -> dict[str, Any]:
    """The delivery of the message whose body holds `marker`, as Lambda's event source hands it to the function.
    The queues are the session's: what other tests left there is put back (visible again shortly), not taken."""
    sqs = boto3.client("sqs")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"])
        messages = batch.get("Messages", [])
        mine = [m for m in messages if marker in m["Body"]]
        for other in messages:  # back a little later, so that the next receive reaches past them
            if other not in mine:
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=other["ReceiptHandle"], VisibilityTimeout=15)
        if mine:
            return {"Records": [lambda_record(mine[0], _queue_arn(url))]}
    raise AssertionError(f"no message with {marker!r} on {url}")


def _delete(url: str, delivery: dict[str, Any]) -> None:
    """As the event source does with a handled message; one left to be retried later is taken off too, so that the
    session's queue does not hand it to the next test."""
    boto3.client("sqs").delete_message(QueueUrl=url, ReceiptHandle=delivery["Records"][0]["receiptHandle"])


def _queue_arn(url: str) -> str:
    return boto3.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _callback(callback_app: Any, name: str, **changes: Any) -> int:
    event = json.loads((EVENTS / name).read_text())
    event["body"] = json.dumps(json.loads(event["body"]) | changes)
    return callback_app.lambda_handler(event, LambdaContext("StatusCallbackFunction"))["statusCode"]


def _privacy_change(callback_app: Any, national_id: str) -> int:
    """A change from Helsenorge, as ePROM forwards it (the key in a header)."""
    body = json.dumps({"nationalId": national_id, "id": RESERVATION_PVK_ID, "name": "Reservasjon", "status": "RES"})
    event = rest_api_event("PUT", "/api/PersonvernInnstilling", {"Authorization": f"Basic {API_KEY}"}, body)
    return callback_app.lambda_handler(event, LambdaContext("StatusCallbackFunction"))["statusCode"]


@pytest.fixture(scope="module")
def typical_flow(aws: dict[str, str], simulator_session: EpromSimulator) -> list[iam.Call]:
    """An order placed, one refused, one retried; its callbacks (one replayed); its outcomes published; its signed
    document fetched. A letter sent, one refused, one retried; its callback; its events published. A privacy setting
    read, set and listed, a list that fails, a change from Helsenorge (sent twice), and upstream invoking the function
    and reading what it points at under PrivacySettingsClientPolicy. Returns the AWS calls the functions and the
    client policies made, each as decided."""
    import fetch_signed_document.app as fetcher
    import place_order.app as placer
    import privacy_settings.app as privacy_app
    import publish_outcomes.app as publisher
    import send_message.app as sender
    import status_callback.app as callback_app
    from eprom.api_key import _cached as cached_secrets
    from eprom.queues import QueueVisibility

    def cold_start() -> None:  # each function has its own Lambda environment: its own cached secrets, queue URL
        cached_secrets.clear()
        QueueVisibility._url.cache_clear()
        placer.fingerprint_key.cache_clear()
        sender.fingerprint_key.cache_clear()

    evaluator = iam.current()
    first = len(evaluator.calls)
    sqs = boto3.client("sqs")
    simulator_session.reset(replace(DEFAULT_SIMULATOR, forms=dict(DEFAULT_SIMULATOR.forms)))

    cold_start()
    placed = order_message()
    sqs.send_message(QueueUrl=aws["ORDER_QUEUE_URL"], MessageBody=json.dumps(placed))
    delivery = _receive(aws["ORDER_QUEUE_URL"], placed["orderReference"])
    assert placer.lambda_handler(delivery, LambdaContext()) == {"batchItemFailures": []}
    _delete(aws["ORDER_QUEUE_URL"], delivery)
    refused = sqs_event(order_message(nationalId="12345678901"))
    assert placer.lambda_handler(refused, LambdaContext()) == {"batchItemFailures": []}
    simulator_session.config.rate_500 = 1.0
    unavailable = order_message()
    sqs.send_message(QueueUrl=aws["ORDER_QUEUE_URL"], MessageBody=json.dumps(unavailable))
    retried = _receive(aws["ORDER_QUEUE_URL"], unavailable["orderReference"])
    assert failed_ids(placer.lambda_handler(retried, LambdaContext())) == {retried["Records"][0]["messageId"]}
    _delete(aws["ORDER_QUEUE_URL"], retried)
    simulator_session.reset(replace(DEFAULT_SIMULATOR, forms=dict(DEFAULT_SIMULATOR.forms)))

    cold_start()
    form_order_id, signed_form_id = str(uuid.uuid4()), str(uuid.uuid4())
    assert _callback(callback_app, "callback-ordered.json", formOrderId=form_order_id) == 200
    for _ in range(2):  # ePROM sends again until acknowledged: the second finds the answers already stored
        completed = {"formOrderId": form_order_id, "signedFormId": signed_form_id}
        assert _callback(callback_app, "callback-completed.json", **completed) == 200

    records = stream_records(aws, form_order_id)
    assert publisher.lambda_handler({"Records": records}, LambdaContext()) == {"batchItemFailures": []}

    cold_start()
    simulator_session.documents[signed_form_id] = (time.monotonic(), signed_pdf(signed_form_id, 1000))
    job = _receive(aws["SIGNED_DOCUMENT_QUEUE_URL"], form_order_id)
    assert fetcher.lambda_handler(job, LambdaContext()) == {"batchItemFailures": []}
    _delete(aws["SIGNED_DOCUMENT_QUEUE_URL"], job)
    # another order's signedFormId: given up (a dead letter); a job whose item is gone: ended, not downloaded
    invalid = sqs_event({"formOrderId": form_order_id, "signedFormId": str(uuid.uuid4())},
                        {"formOrderId": str(uuid.uuid4()), "signedFormId": str(uuid.uuid4())})  # fmt: skip
    assert fetcher.lambda_handler(invalid, LambdaContext()) == {"batchItemFailures": []}
    # A job run again after it stored the PDF but before it updated the item: the conditional write finds the PDF
    stored_first, pdf = str(uuid.uuid4()), signed_pdf(signed_form_id, 1000)
    assert (
        _callback(callback_app, "callback-completed.json", formOrderId=stored_first, signedFormId=signed_form_id) == 200
    )
    boto3.client("s3").put_object(Bucket=aws["FORM_RESULTS_BUCKET"], Key=f"signed/{stored_first}.pdf", Body=pdf,
                                  Metadata={"sha256": hashlib.sha256(pdf).hexdigest()})  # fmt: skip
    again = sqs_event({"formOrderId": stored_first, "signedFormId": signed_form_id})
    assert fetcher.lambda_handler(again, LambdaContext()) == {"batchItemFailures": []}
    early = {"formOrderId": str(uuid.uuid4()), "signedFormId": str(uuid.uuid4())}  # not signed yet: retried
    assert _callback(callback_app, "callback-completed.json", **early) == 200
    sqs.send_message(QueueUrl=aws["SIGNED_DOCUMENT_QUEUE_URL"], MessageBody=json.dumps(early))
    not_signed_yet = _receive(aws["SIGNED_DOCUMENT_QUEUE_URL"], early["formOrderId"])
    fetcher.lambda_handler(not_signed_yet, LambdaContext())
    _delete(aws["SIGNED_DOCUMENT_QUEUE_URL"], not_signed_yet)

    cold_start()  # messages to citizens: a letter sent and called back, one refused, one retried; their events
    letter = letter_message(aws)
    sqs.send_message(QueueUrl=aws["MESSAGE_QUEUE_URL"], MessageBody=json.dumps(letter))
    delivery = _receive(aws["MESSAGE_QUEUE_URL"], letter["messageReference"])
    assert sender.lambda_handler(delivery, LambdaContext()) == {"batchItemFailures": []}
    _delete(aws["MESSAGE_QUEUE_URL"], delivery)
    [taken] = simulator_session.messages_titled(letter["messageReference"])
    assert _callback(callback_app, "callback-message-to-citizen.json",
                     messageToCitizenId=taken.message_to_citizen_id) == 200  # fmt: skip
    missing = letter_message(aws, documents=[{"key": f"documents/{uuid.uuid4()}.pdf", "title": "A", "main": True}])
    assert sender.lambda_handler(sqs_event(missing), LambdaContext()) == {"batchItemFailures": []}  # refused
    simulator_session.config.rate_500 = 1.0
    failing = sms_message()
    sqs.send_message(QueueUrl=aws["MESSAGE_QUEUE_URL"], MessageBody=json.dumps(failing))
    retried = _receive(aws["MESSAGE_QUEUE_URL"], failing["messageReference"])
    assert failed_ids(sender.lambda_handler(retried, LambdaContext())) == {retried["Records"][0]["messageId"]}
    _delete(aws["MESSAGE_QUEUE_URL"], retried)
    simulator_session.reset(replace(DEFAULT_SIMULATOR, forms=dict(DEFAULT_SIMULATOR.forms)))
    records = message_stream_records(aws, letter["messageReference"])
    assert publisher.lambda_handler({"Records": records}, LambdaContext()) == {"batchItemFailures": []}
    cold_start()
    person = {"nationalId": "26073941651", "type": "Reservasjon", "pvkId": RESERVATION_PVK_ID}
    invocation = LambdaContext("PrivacySettingsFunction", timeout_seconds=60)
    assert privacy_app.lambda_handler({"operation": "get"} | person, invocation)["status"]
    assert "changed" in privacy_app.lambda_handler({"operation": "set", "status": "Aktiv"} | person, invocation)
    simulator_session.config.pvk_part_code = None  # the list fails: its upload is aborted
    failed = privacy_app.lambda_handler({"operation": "list", "pvkId": RESERVATION_PVK_ID}, invocation)
    assert failed["error"]["class"] == "RefusedByEprom"
    simulator_session.reset(replace(DEFAULT_SIMULATOR, forms=dict(DEFAULT_SIMULATOR.forms)))
    cold_start()
    for _ in range(2):  # ePROM sends again until acknowledged: the second finds the change stored
        assert _privacy_change(callback_app, "26073941651") == 200
    s3 = boto3.client("s3")
    [change] = s3.list_object_versions(Bucket=aws["FORM_RESULTS_BUCKET"], Prefix="privacy/changes/")["Versions"][:1]
    list_request = json.dumps({"operation": "list", "pvkId": RESERVATION_PVK_ID})
    front = InvokeFront({"PrivacySettingsFunction": privacy_app.lambda_handler})
    with front, iam.acting_as("PrivacySettingsClientPolicy"):  # upstream: invoke, then read what the reply names
        invoked = boto3.client("lambda", endpoint_url=front.base_url).invoke(
            FunctionName="PrivacySettingsFunction", Payload=list_request
        )
        listed = json.loads(invoked["Payload"].read())
        s3.get_object(Bucket=listed["bucket"], Key=listed["key"], VersionId=listed["versionId"])
        s3.get_object(Bucket=aws["FORM_RESULTS_BUCKET"], Key=change["Key"], VersionId=change["VersionId"])
    return [call for call in evaluator.calls[first:] if call.principal in FUNCTIONS + CLIENT_POLICIES]


def test_every_call_of_a_typical_flow_and_of_the_lambda_service_is_allowed(typical_flow: list[iam.Call]) -> None:
    assert {call.principal for call in typical_flow} == set(FUNCTIONS + CLIENT_POLICIES)
    assert [call for call in typical_flow if not call.allowed] == []
    evaluator = iam.current()
    for function in FUNCTIONS:
        for action, resource, context in iam.lambda_service_needs(evaluator, function):
            statements = evaluator.statements(function)
            assert iam.is_allowed(statements, action, resource, context), (function, action, resource)


# Granted for paths a flow cannot take here, each with why.
NEEDED_ELSEWHERE = {
    # Only on a claim whose holder stopped without settling it: the earlier version's idempotency record of the
    # reference is read once (claims.legacy_answer; tests/integration/test_exactly_once.py runs that path).
    ("PlaceOrderFunction", "dynamodb:GetItem"),
}

# Granted, and needed by nothing: to be taken out of template.yaml (strict: this fails once it is needed, or gone).
NOT_NEEDED: dict[tuple[str, str, str], str] = {}  # (function, Sid, action) granted but unused, with the reason


def _granted(function: str) -> list[tuple[str, str]]:
    """(Sid, action) of every Allow of the function's role (or of the managed policy)."""
    evaluator = iam.LocalIam(TEMPLATE)
    evaluator.add_stack(iam.StackResources("eu-north-1", {}, {}))
    return [
        (statement.get("Sid", "?"), action)
        for statement in evaluator.statements(function)
        if statement["Effect"] == "Allow"
        for action in iam.as_list(statement["Action"])
    ]


@pytest.mark.parametrize(
    ("function", "sid", "action"),
    [
        pytest.param(
            function, sid, action, marks=[pytest.mark.xfail(strict=True, reason=NOT_NEEDED[function, sid, action])]
        )
        if (function, sid, action) in NOT_NEEDED
        else (function, sid, action)
        for function in FUNCTIONS + CLIENT_POLICIES
        for sid, action in _granted(function)
        if (function, action) not in NEEDED_ELSEWHERE
    ],
)
def test_each_permission_of_each_role_is_needed(typical_flow: list[iam.Call], function: str, sid: str, action: str):
    """Removed from the template, the permission denies a call of the flow or one the Lambda service makes."""
    evaluator = iam.current()
    needs = [(c.action, c.resource, dict(c.context)) for c in typical_flow if c.principal == function]
    needs += iam.lambda_service_needs(evaluator, function) if function in FUNCTIONS else []
    with evaluator.without(function, action, sid):
        statements = evaluator.statements(function)
        denied = [need for need in needs if not iam.is_allowed(statements, *need)]
    assert denied, f"{function} {sid}: nothing needs {action}"


def test_a_denied_call_fails_as_aws_fails_it_and_does_not_reach_aws(aws: dict[str, str]) -> None:
    key = f"answers/{uuid.uuid4()}.json"
    with iam.acting_as("PlaceOrderFunction"), pytest.raises(ClientError) as denied:
        boto3.client("s3").put_object(Bucket=aws["FORM_RESULTS_BUCKET"], Key=key, Body=b"{}")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "s3:PutObject" in denied.value.response["Error"]["Message"]
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=aws["FORM_RESULTS_BUCKET"], Prefix=key)


def test_kms_is_needed_for_an_encrypted_queue(aws: dict[str, str], dead_letters) -> None:
    evaluator = iam.current()
    with (
        evaluator.without("PlaceOrderFunction", "kms:GenerateDataKey"),
        iam.acting_as("PlaceOrderFunction"),
        pytest.raises(ClientError) as denied,
    ):
        boto3.client("sqs").send_message(QueueUrl=aws["DEAD_LETTER_QUEUE_URL"], MessageBody="{}")
    assert "kms:GenerateDataKey" in denied.value.response["Error"]["Message"]
    assert dead_letters.messages() == []


def test_a_read_of_a_missing_key_is_403_without_list_bucket(aws: dict[str, str]) -> None:
    """As S3 answers it (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html), decided per role
    (local/aws_limits.py answers every missing key so, whoever asks)."""
    key = f"signed/{uuid.uuid4()}.pdf"
    with iam.current().without("FetchSignedDocumentFunction", "s3:ListBucket"):
        with iam.acting_as("FetchSignedDocumentFunction"), pytest.raises(ClientError) as denied:
            boto3.client("s3").head_object(Bucket=aws["FORM_RESULTS_BUCKET"], Key=key)
        assert denied.value.response["Error"]["Code"] == "403"
        with iam.acting_as("FetchSignedDocumentFunction"), pytest.raises(ClientError) as denied:
            boto3.client("s3").get_object(Bucket=aws["FORM_RESULTS_BUCKET"], Key=key)
        assert denied.value.response["Error"]["Code"] == "AccessDenied"


def test_a_refusal_that_cannot_be_dead_lettered_is_retried_not_lost(placer, eprom, dead_letters, lambda_context):
    event = sqs_event(order_message(nationalId="12345678901"))
    with iam.current().without("PlaceOrderFunction", "sqs:SendMessage"):
        assert failed_ids(placer.lambda_handler(event, lambda_context)) == {event["Records"][0]["messageId"]}
    assert dead_letters.messages() == []


def test_answers_that_cannot_be_stored_are_not_acknowledged(callback_app, aws: dict[str, str]) -> None:
    form_order_id = str(uuid.uuid4())
    with iam.current().without("StatusCallbackFunction", "s3:PutObject"):
        status = _callback(callback_app, "callback-completed.json", formOrderId=form_order_id)
    assert status >= 500
    table = boto3.resource("dynamodb").Table(aws["FORM_ORDERS_TABLE"])
    assert "Item" not in table.get_item(Key={"formOrderId": form_order_id}, ConsistentRead=True)


# --- upstream and operators: the stack's managed policies (h18-template adds them) -------------------------------


def _policy(logical_id: str) -> str:
    if not iam.current().has(logical_id):
        pytest.skip("policy not in template")
    return logical_id


def test_a_producer_sends_an_order_under_order_producer_policy(aws: dict[str, str]) -> None:
    order = order_message()
    with iam.acting_as(_policy("OrderProducerPolicy")):
        boto3.client("sqs").send_message(QueueUrl=aws["ORDER_QUEUE_URL"], MessageBody=json.dumps(order))
        with pytest.raises(ClientError):  # and nothing else: not the dead letters
            boto3.client("sqs").send_message(QueueUrl=aws["DEAD_LETTER_QUEUE_URL"], MessageBody="{}")
    delivery = _receive(aws["ORDER_QUEUE_URL"], order["orderReference"])
    _delete(aws["ORDER_QUEUE_URL"], delivery)
    assert json.loads(delivery["Records"][0]["body"]) == order


# Upstream's producers: what each does under its managed policy, each permission of it needed.
PRODUCERS = ["MessageProducerPolicy"]


@pytest.fixture(scope="module")
def producer_flows(aws: dict[str, str]) -> dict[str, list[iam.Call]]:
    """A letter's PDF uploaded and the letter sent, as an upstream system does under MessageProducerPolicy."""
    evaluator = iam.current()
    first = len(evaluator.calls)
    with iam.acting_as("MessageProducerPolicy"):
        key = f"documents/{uuid.uuid4()}.pdf"
        boto3.client("s3").put_object(Bucket=aws["MESSAGE_DOCUMENTS_BUCKET"], Key=key, Body=signed_pdf(key, 1000))
        letter = letter_message(aws, documents=[{"key": key, "title": "Brev", "main": True}])
        boto3.client("sqs").send_message(QueueUrl=aws["MESSAGE_QUEUE_URL"], MessageBody=json.dumps(letter))
    _delete(aws["MESSAGE_QUEUE_URL"], _receive(aws["MESSAGE_QUEUE_URL"], letter["messageReference"]))
    calls = [call for call in evaluator.calls[first:] if call.principal == "MessageProducerPolicy"]
    return {"MessageProducerPolicy": calls}


def test_a_producer_sends_a_letter_under_message_producer_policy_and_nothing_else(aws, producer_flows) -> None:
    assert producer_flows["MessageProducerPolicy"] and all(
        call.allowed for call in producer_flows["MessageProducerPolicy"]
    )
    with iam.acting_as(_policy("MessageProducerPolicy")):
        with pytest.raises(ClientError):  # not the dead letters
            boto3.client("sqs").send_message(QueueUrl=aws["MESSAGE_DEAD_LETTER_QUEUE_URL"], MessageBody="{}")
        with pytest.raises(ClientError):  # not outside documents/
            boto3.client("s3").put_object(Bucket=aws["MESSAGE_DOCUMENTS_BUCKET"], Key="elsewhere/x.pdf", Body=b"x")


def _granted_by_policy(policy: str) -> list[tuple[str, str]]:
    statements = TEMPLATE["Resources"][policy]["Properties"]["PolicyDocument"]["Statement"]
    return [(statement["Sid"], action) for statement in statements for action in iam.as_list(statement["Action"])]


@pytest.mark.parametrize(
    ("policy", "sid", "action"), [(policy, *granted) for policy in PRODUCERS for granted in _granted_by_policy(policy)]
)
def test_each_permission_of_each_producer_policy_is_needed(producer_flows, policy: str, sid: str, action: str) -> None:
    """Removed from the policy, the permission denies a call of the producer's flow."""
    evaluator = iam.current()
    needs = [(call.action, call.resource, dict(call.context)) for call in producer_flows[policy]]
    with evaluator.without(policy, action, sid):
        statements = evaluator.statements(policy)
        denied = [need for need in needs if not iam.is_allowed(statements, *need)]
    assert denied, f"{policy} {sid}: nothing needs {action}"


def test_a_consumer_reads_an_outcome_and_its_answers_by_version(aws: dict[str, str], outcome_events) -> None:
    policy = _policy("OutcomeConsumerPolicy")
    s3 = boto3.client("s3")
    key = f"answers/{uuid.uuid4()}.json"
    version = s3.put_object(Bucket=aws["FORM_RESULTS_BUCKET"], Key=key, Body=b'{"v": 1}')["VersionId"]
    s3.put_object(Bucket=aws["FORM_RESULTS_BUCKET"], Key=key, Body=b'{"v": 2}')
    boto3.client("sqs").send_message(QueueUrl=aws["OUTCOME_QUEUE_URL"], MessageBody="{}")
    with iam.acting_as(policy):
        sqs = boto3.client("sqs")
        [message] = sqs.receive_message(QueueUrl=aws["OUTCOME_QUEUE_URL"], WaitTimeSeconds=1)["Messages"]
        sqs.delete_message(QueueUrl=aws["OUTCOME_QUEUE_URL"], ReceiptHandle=message["ReceiptHandle"])
        body = s3.get_object(Bucket=aws["FORM_RESULTS_BUCKET"], Key=key, VersionId=version)["Body"].read()
    assert body == b'{"v": 1}'


@pytest.mark.slow
def test_the_eprom_command_runs_under_operator_policy(aws: dict[str, str], tmp_path, monkeypatch, dead_letters):
    """`eprom` lists and exports dead letters under OperatorPolicy; without sqs:ReceiveMessage it cannot."""
    policy = _policy(iam.OPERATOR_POLICY)
    from eprom_cli.app import app
    from typer.testing import CliRunner

    nowhere = "http://127.0.0.1:9"  # no callback front or simulator runs for this test
    target = LocalTarget(endpoint_url=aws["AWS_ENDPOINT_URL"], api_base_url=nowhere, eprom_simulator_url=nowhere,
                         **{name: aws[variable] for name, variable in STATE_VARIABLES.items()})  # fmt: skip
    state = tmp_path / "stack.json"
    LocalState(region=aws["AWS_DEFAULT_REGION"], target=target).write(state)
    monkeypatch.setenv("EPROM_LOCAL_STATE", str(state))
    boto3.client("sqs").send_message(QueueUrl=aws["DEAD_LETTER_QUEUE_URL"], MessageBody=json.dumps(order_message()))
    evaluator = iam.current()
    first = len(evaluator.calls)

    listed = CliRunner().invoke(app, ["--local", "dead-letters", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    operator_calls = [call for call in evaluator.calls[first:] if call.principal == policy]
    assert operator_calls and all(call.allowed for call in operator_calls)
    with evaluator.without(policy, "sqs:ReceiveMessage"):
        assert CliRunner().invoke(app, ["--local", "dead-letters", "list", "--json"]).exit_code != 0


def test_the_evaluator_follows_aws_order_and_wildcards() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html"""
    statements = [
        {"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::bucket/*"},
        {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/secret/*"},
        {"Effect": "Allow", "NotAction": "s3:*", "Resource": "arn:aws:sqs:*"},
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*",
         "Condition": {"StringEquals": {"kms:ViaService": "sqs.eu-north-1.amazonaws.com"}}},
    ]  # fmt: skip
    assert iam.is_allowed(statements, "s3:GetObjectVersion", "arn:aws:s3:::bucket/answers/a.json", {})
    assert not iam.is_allowed(statements, "s3:GetObject", "arn:aws:s3:::bucket/secret/a.json", {})  # Deny wins
    assert not iam.is_allowed(statements, "s3:PutObject", "arn:aws:s3:::bucket/a.json", {})  # nothing allows it
    assert iam.is_allowed(statements, "sqs:SendMessage", "arn:aws:sqs:eu-north-1:123456789012:q", {})
    via_sqs = {"kms:ViaService": "sqs.eu-north-1.amazonaws.com"}
    assert iam.is_allowed(statements, "kms:Decrypt", "arn:aws:kms:eu-north-1:123456789012:key/k", via_sqs)
    assert not iam.is_allowed(statements, "kms:Decrypt", "arn:aws:kms:eu-north-1:123456789012:key/k", {})


def test_a_listing_is_decided_on_its_prefix(aws: dict[str, str]) -> None:
    """s3:prefix, as in a statement that lets a role list only its part of the bucket."""
    evaluator = iam.current()
    listing = [{"Effect": "Allow", "Action": "s3:ListBucketVersions", "Resource": "arn:aws:s3:::*",
                "Condition": {"StringLike": {"s3:prefix": "answers/*"}}}]  # fmt: skip
    for prefix in ("answers/x", "signed/x"):  # decided under the role of the day; what it recorded is checked here
        with iam.acting_as("StatusCallbackFunction"), contextlib.suppress(ClientError):
            boto3.client("s3").list_object_versions(Bucket=aws["FORM_RESULTS_BUCKET"], Prefix=prefix)
    answers, signed = [c for c in evaluator.calls[-2:] if c.action == "s3:ListBucketVersions"]
    assert iam.is_allowed(listing, answers.action, answers.resource, dict(answers.context))
    assert not iam.is_allowed(listing, signed.action, signed.resource, dict(signed.context))


def test_the_privacy_function_moves_eproms_pace_and_touches_no_claim(aws: dict[str, str]) -> None:
    """Its role names the pace item by its partition key (dynamodb:LeadingKeys): the claims on orderReferences, in the
    same table, are out of its reach."""
    claim = {"id": {"S": f"orderReference#{uuid.uuid4()}"}}
    with iam.acting_as("PrivacySettingsFunction"), pytest.raises(ClientError) as denied:
        boto3.client("dynamodb").update_item(TableName=aws["IDEMPOTENCY_TABLE"], Key=claim,
                                             UpdateExpression="SET #s = :s", ExpressionAttributeNames={"#s": "state"},
                                             ExpressionAttributeValues={":s": {"S": "Placed"}})  # fmt: skip
    assert "dynamodb:UpdateItem" in denied.value.response["Error"]["Message"]
    assert "Item" not in boto3.client("dynamodb").get_item(TableName=aws["IDEMPOTENCY_TABLE"], Key=claim)


def test_for_all_values_holds_for_a_key_the_request_lacks() -> None:
    """As in AWS (reference_policies_condition-single-vs-multi-valued-context-keys.html): ForAllValues over no values
    is true; the single-valued operator is false without the key."""
    pace_only = {"StringEquals": {"dynamodb:LeadingKeys": ["pace#eprom"]}}
    statement = {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}
    for_all = [statement | {"Condition": {f"ForAllValues:{key}": value for key, value in pace_only.items()}}]
    assert iam.is_allowed(for_all, "dynamodb:DescribeTable", "arn:aws:dynamodb:eu-north-1:1:table/t", {})
    assert not iam.is_allowed([statement | {"Condition": pace_only}], "dynamodb:DescribeTable", "t", {})
    leading = {"dynamodb:LeadingKeys": "orderReference#x"}
    assert not iam.is_allowed(for_all, "dynamodb:UpdateItem", "arn:aws:dynamodb:eu-north-1:1:table/t", leading)
