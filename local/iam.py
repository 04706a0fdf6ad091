"""Each function's AWS calls decided by its own role, as CloudFormation would create it, on the local stack.

Without this every local call uses one all-powerful credential, so a permission missing from template.yaml shows
only after a deploy. `enforce(resources)` reads the roles and managed policies of the template *as transformed by
SAM* (.aws-sam/transformed/internet.json, `make transformed`), resolves their Ref/GetAtt/Sub to the local
resources' names and ARNs (local/aws_resources.py), and hooks every boto3 client in the process: each call is
evaluated against the policy of the principal making it, and a denied call fails as AWS fails it (a ClientError
with HTTP 403, AccessDenied) without reaching moto.

Who makes a call: the innermost frame of the call's Python stack that lies in a function's code (CodeUri in
template.yaml) names the function; `eprom` (cli/eprom_cli) runs under OperatorPolicy when the template has it.
All handlers run in one process and share layer code (one Secrets Manager provider, worker threads), so the
caller's code, not a client or a credential, is what tells them apart. Calls from anywhere else (test code, the
local harness playing the Lambda service) are not restricted; `acting_as(logical_id)` runs a block under any
role or managed policy (upstream producers, consumers).

Also decided, as AWS implies them (each a call of its own in `calls`):
- KMS on the stack key for encrypted queues, bucket objects and secrets: kms:GenerateDataKey to write,
  kms:Decrypt to read (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html,
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html,
  https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html), with kms:ViaService.
  DynamoDB's use of the table key (made on the caller's behalf, cached per table) is not modelled: table calls
  imply no KMS here.
- s3:ListBucket for a read of a key that is not there: without it S3 answers 403, not 404
  (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html).

The evaluator is hand-written because moto's IAM enforcement checks actions but not most resource ARNs, knows no
implied KMS or ListBucket, and cannot tell the in-process functions apart. It covers what our policies use:
identity policies, Allow/Deny, (Not)Action and (Not)Resource with * and ? wildcards, and String/Arn/Bool
conditions on the keys given per call. Resource policies (bucket, queue, key) are not evaluated.
"""

import json
import re
import subprocess
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
import botocore.handlers
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from local.aws_resources import load_template

ROOT = Path(__file__).resolve().parent.parent
TRANSFORMED = ROOT / ".aws-sam" / "transformed" / "internet.json"
ACCOUNT_ID = "123456789012"  # moto's account
OPERATOR_POLICY = "OperatorPolicy"

_acting_as: ContextVar[str | None] = ContextVar("acting_as", default=None)


def transformed_template() -> dict[str, Any]:
    """The internet mode as CloudFormation receives it (made by `make transformed` when missing or stale)."""
    template = ROOT / "template.yaml"
    if not TRANSFORMED.exists() or TRANSFORMED.stat().st_mtime < template.stat().st_mtime:
        subprocess.run(["make", "--silent", "transformed"], cwd=ROOT, check=True, capture_output=True)  # noqa: S607
    transformed: dict[str, Any] = json.loads(TRANSFORMED.read_text())
    return transformed


@dataclass(frozen=True)
class Call:
    principal: str
    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()
    allowed: bool = True


@dataclass
class StackResources:
    """One set of local resources: what each logical id's Ref and Fn::GetAtt resolve to."""

    region: str
    refs: dict[str, str]
    attributes: dict[tuple[str, str], str]
    name: str = "local"  # the CloudFormation stack's (AWS::StackName)


def local_stack(resources: dict[str, str], region: str, endpoint_url: str, name: str = "local") -> StackResources:
    """The logical ids of create_resources()'s environment, on the moto server at `endpoint_url`."""
    arn = f"arn:aws:{{}}:{region}:{ACCOUNT_ID}:{{}}"
    refs: dict[str, str] = {}
    attributes: dict[tuple[str, str], str] = {}
    # create_resources() names every queue and secret "{prefix}-{logical id}" (a secret's ARN adds "-" and 6 more)
    prefix = resources["FORM_ORDERS_TABLE"].removesuffix("-FormOrdersTable") + "-"
    for value in resources.values():
        if value.startswith("http") and urlparse(value).path.rsplit("/", 1)[-1].startswith(prefix):
            queue = urlparse(value).path.rsplit("/", 1)[-1]
            refs[queue.removeprefix(prefix)] = value
            attributes[queue.removeprefix(prefix), "Arn"] = arn.format("sqs", queue)
        elif value.startswith("arn:aws:secretsmanager:") and value.split(":")[-1].startswith(prefix):
            refs[value.split(":")[-1].removeprefix(prefix).rsplit("-", 1)[0]] = value
    if "ORDER_QUEUE_URL" in resources:  # a test may give the stack an OrderQueue of its own
        queue = urlparse(resources["ORDER_QUEUE_URL"]).path.rsplit("/", 1)[-1]
        refs["OrderQueue"] = resources["ORDER_QUEUE_URL"]
        attributes["OrderQueue", "Arn"] = arn.format("sqs", queue)
    if "EPROM_API_KEY_SECRET_ID" in resources:  # a test may give the stack a secret of its own
        refs["EpromApiKeySecret"] = resources["EPROM_API_KEY_SECRET_ID"]
    tables = (("FormOrdersTable", "FORM_ORDERS_TABLE"), ("IdempotencyTable", "IDEMPOTENCY_TABLE"),
              ("MessagesTable", "MESSAGES_TABLE"))  # fmt: skip
    for logical_id, variable in tables:
        if variable in resources:
            refs[logical_id] = resources[variable]
            attributes[logical_id, "Arn"] = arn.format("dynamodb", f"table/{resources[variable]}")
            dynamodb = boto3.client("dynamodb", region_name=region, endpoint_url=endpoint_url,
                                    aws_access_key_id="testing", aws_secret_access_key="testing")  # noqa: S106  # fmt: skip
            description = dynamodb.describe_table(TableName=resources[variable])["Table"]
            if "LatestStreamArn" in description:
                attributes[logical_id, "StreamArn"] = description["LatestStreamArn"]
    for logical_id, variable in (("FormResultsBucket", "FORM_RESULTS_BUCKET"),
                                 ("MessageDocumentsBucket", "MESSAGE_DOCUMENTS_BUCKET")):  # fmt: skip
        if variable in resources:
            refs[logical_id] = resources[variable]
            attributes[logical_id, "Arn"] = f"arn:aws:s3:::{resources[variable]}"
    if "OUTCOME_BUS_NAME" in resources:
        refs["OutcomeBus"] = resources["OUTCOME_BUS_NAME"]
        attributes["OutcomeBus", "Arn"] = arn.format("events", f"event-bus/{resources['OUTCOME_BUS_NAME']}")
    # The local stack has no key: every encrypted resource names this one, as they all name EncryptionKey.
    refs["EncryptionKey"] = "local-encryption-key"
    attributes["EncryptionKey", "Arn"] = arn.format("kms", "key/local-encryption-key")
    return StackResources(region, refs, attributes, name)


class _Resolver:
    """Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::If (conditions from the parameters' defaults) of one stack."""

    def __init__(self, template: dict[str, Any], stack: StackResources) -> None:
        self.template = template
        self.stack = stack
        self.parameters: dict[str, Any] = {
            name: parameter.get("Default", "") for name, parameter in template.get("Parameters", {}).items()
        }
        for name, parameter in template.get("Parameters", {}).items():
            if parameter.get("Type") == "CommaDelimitedList":
                self.parameters[name] = [v for v in str(self.parameters[name]).split(",") if v]
        self.parameters |= {
            "AWS::Region": stack.region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack.name,
            "AWS::StackId": f"arn:aws:cloudformation:{stack.region}:{ACCOUNT_ID}:stack/{stack.name}/*",
        }

    def ref(self, name: str) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        if self.template["Resources"].get(name, {}).get("Type") == "AWS::Lambda::Function":
            return name
        return self.stack.refs.get(name, f"local-{name}")  # resources the local stack lacks match nothing real

    def get_att(self, logical_id: str, attribute: str) -> str:
        resource = self.template["Resources"].get(logical_id, {})
        if resource.get("Type") == "AWS::Lambda::Function" and attribute == "Arn":  # named by its logical id here
            return f"arn:aws:lambda:{self.stack.region}:{ACCOUNT_ID}:function:{logical_id}"
        if resource.get("Type") == "AWS::Logs::LogGroup" and attribute == "Arn":  # the Lambda service writes there
            name = self.value(resource["Properties"].get("LogGroupName", f"local-{logical_id}"))
            return f"arn:aws:logs:{self.stack.region}:{ACCOUNT_ID}:log-group:{name}:*"
        fallback = f"arn:aws:local:{self.stack.region}:{ACCOUNT_ID}:{logical_id}/{attribute}"
        return self.stack.attributes.get((logical_id, attribute), fallback)

    def condition(self, name: str) -> bool:
        return bool(self.value(self.template["Conditions"][name]))

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.value(item) for item in node) if v is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) != 1:
            values = {key: self.value(item) for key, item in node.items()}
            return {key: value for key, value in values.items() if value is not _NO_VALUE}
        [(key, argument)] = node.items()
        if key == "Ref":
            return _NO_VALUE if argument == "AWS::NoValue" else self.ref(argument)
        if key == "Fn::GetAtt":
            logical_id, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
            return self.get_att(logical_id, attribute)
        if key == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            return re.sub(r"\$\{([^}!]+)\}", lambda m: self._sub(m.group(1), variables), text)
        if key == "Fn::Join":
            return argument[0].join(self.value(argument[1]))
        if key == "Fn::If":
            return self.value(argument[1] if self.condition(argument[0]) else argument[2])
        if key == "Fn::Equals":
            return self.value(argument[0]) == self.value(argument[1])
        if key == "Fn::Not":
            return not self.value(argument[0])
        if key == "Fn::And":
            return all(self.value(item) for item in argument)
        if key == "Fn::Or":
            return any(self.value(item) for item in argument)
        if key == "Condition":
            return self.condition(argument)
        return {key: self.value(argument)}

    def _sub(self, name: str, variables: dict[str, Any]) -> str:
        if name in variables:
            return str(self.value(variables[name]))
        if "." in name:
            return self.get_att(*name.split(".", 1))
        return str(self.ref(name))


_NO_VALUE = object()


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _wildcard(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _wildcard_regex(pattern, ignore_case).fullmatch(value) is not None


@cache
def _wildcard_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.IGNORECASE if ignore_case else 0)


_CONDITION_TESTS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda pattern, value: pattern == value,
    "StringLike": _wildcard,
    "ArnEquals": lambda pattern, value: pattern == value,
    "ArnLike": _wildcard,
    "Bool": lambda pattern, value: str(pattern).lower() == value.lower(),
}


def _conditions_hold(conditions: dict[str, Any], context: dict[str, str]) -> bool:
    """Each operator of the block, each key: the call's value matches one of the listed values. An operator not
    known here never holds (an Allow under it grants nothing, a Deny under it denies nothing)."""
    for qualified, tests in conditions.items():
        # Every context key here has one value, for which ForAllValues:X is X; a key the request lacks satisfies
        # ForAllValues, as in AWS: https://docs.aws.amazon.com/IAM/latest/UserGuide/
        # reference_policies_condition-single-vs-multi-valued-context-keys.html
        operator = qualified.removeprefix("ForAllValues:")
        negated = operator.startswith("StringNot") or operator.startswith("ArnNot")
        base = operator.removesuffix("IfExists").replace("Not", "", 1) if negated else operator.removesuffix("IfExists")
        test = _CONDITION_TESTS.get(base)
        if test is None:
            return False
        for key, expected in tests.items():
            value = next((v for k, v in context.items() if k.lower() == key.lower()), None)
            if value is None:
                if operator.endswith("IfExists") or qualified.startswith("ForAllValues:"):
                    continue
                return False
            matched = any(test(str(pattern), value) for pattern in as_list(expected))
            if matched == negated:
                return False
    return True


def _statement_matches(statement: dict[str, Any], action: str, resource: str, context: dict[str, str]) -> bool:
    if "Action" in statement:
        action_matches = any(_wildcard(p, action, ignore_case=True) for p in as_list(statement["Action"]))
    else:
        action_matches = not any(_wildcard(p, action, ignore_case=True) for p in as_list(statement["NotAction"]))
    if "Resource" in statement:
        resource_matches = any(_wildcard(p, resource) for p in as_list(statement["Resource"]))
    else:
        resource_matches = not any(_wildcard(p, resource) for p in as_list(statement["NotResource"]))
    return action_matches and resource_matches and _conditions_hold(statement.get("Condition", {}), context)


def is_allowed(statements: list[dict[str, Any]], action: str, resource: str, context: dict[str, str]) -> bool:
    """AWS's order for one account's identity policies: an explicit Deny wins, else an Allow, else denied."""
    matching = [s for s in statements if _statement_matches(s, action, resource, context)]
    return any(s["Effect"] == "Allow" for s in matching) and not any(s["Effect"] == "Deny" for s in matching)


class LocalIam:
    """The transformed template's roles and managed policies, resolved for each local stack; what was called."""

    def __init__(self, template: dict[str, Any]) -> None:
        self.template = template
        self.stacks: list[StackResources] = []
        self.calls: list[Call] = []
        # principal -> (Sid or None for every statement, action) taken out of its policies (tests)
        self.removed: dict[str, set[tuple[str | None, str]]] = {}
        self._lock = threading.Lock()
        self._resolved: dict[tuple[str, frozenset[tuple[str | None, str]]], list[dict[str, Any]]] = {}
        self._code_principals: list[tuple[str, str | None]] = [
            (str(ROOT / resource["Properties"]["CodeUri"]), logical_id)
            for logical_id, resource in load_template()["Resources"].items()
            if resource["Type"] == "AWS::Serverless::Function"
        ]
        cli = ROOT / "cli" / "eprom_cli"
        # `eprom preflight` checks an account before a first deploy: the deployer's own credentials, not an operator's
        self._code_principals.append((str(cli / "preflight.py"), None))
        if self.has(OPERATOR_POLICY):
            self._code_principals.append((str(cli), OPERATOR_POLICY))

    def add_stack(self, stack: StackResources) -> None:
        self.stacks.append(stack)
        self._resolved.clear()

    def has(self, logical_id: str) -> bool:
        return logical_id in self.template["Resources"]

    def policy_documents(self, principal: str, stack: StackResources) -> list[dict[str, Any]]:
        """The resolved policy documents of a function's role, a role, or a managed policy, by logical id."""
        resolver = _Resolver(self.template, stack)
        resource = self.template["Resources"][principal]
        if resource["Type"] in ("AWS::Lambda::Function", "AWS::Serverless::Function"):
            role = resource["Properties"]["Role"]["Fn::GetAtt"]
            return self.policy_documents(role[0] if isinstance(role, list) else role.split(".")[0], stack)
        properties = resource["Properties"]
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            return [resolver.value(properties["PolicyDocument"])]
        documents = [resolver.value(policy["PolicyDocument"]) for policy in properties.get("Policies", [])]
        managed_policy_arns = resolver.value(properties.get("ManagedPolicyArns", []))
        for arn in [] if managed_policy_arns is _NO_VALUE else managed_policy_arns:
            documents += [  # the stack's own managed policies; AWS's (arn:aws:iam::aws:...) grant nothing we call
                resolver.value(r["Properties"]["PolicyDocument"])
                for logical_id, r in self.template["Resources"].items()
                if r["Type"] == "AWS::IAM::ManagedPolicy" and resolver.ref(logical_id) == arn
            ]
        return documents

    def statements(self, principal: str) -> list[dict[str, Any]]:
        removed = frozenset(self.removed.get(principal, ()))
        if (principal, removed) not in self._resolved:
            self._resolved[principal, removed] = self._statements(principal, removed)
        return self._resolved[principal, removed]

    def _statements(self, principal: str, removed: frozenset[tuple[str | None, str]]) -> list[dict[str, Any]]:
        found = []
        for stack in self.stacks:
            for document in self.policy_documents(principal, stack):
                for statement in as_list(document["Statement"]):
                    actions = [
                        a
                        for a in as_list(statement.get("Action", []))
                        if (None, a) not in removed and (statement.get("Sid"), a) not in removed
                    ]
                    if "Action" in statement and not actions:
                        continue
                    found.append(statement | ({"Action": actions} if "Action" in statement else {}))
        return found

    def decide(self, principal: str, action: str, resource: str, context: dict[str, str]) -> Call:
        allowed = is_allowed(self.statements(principal), action, resource, context)
        call = Call(principal, action, resource, tuple(sorted(context.items())), allowed)
        with self._lock:
            self.calls.append(call)
        return call

    @contextmanager
    def without(self, principal: str, action: str, sid: str | None = None) -> Iterator[None]:
        """`principal`'s policies without `action` (only in statement `sid` if given) for the block: a permission
        removed from the template."""
        self.removed.setdefault(principal, set()).add((sid, action))
        try:
            yield
        finally:
            self.removed[principal].discard((sid, action))

    def principal_of_code(self) -> str | None:
        """The function (or operator policy) whose code is on the current stack, innermost first; on a thread whose
        stack holds none (a function's worker thread runs layer code only), the principal that started the thread:
        a Lambda environment has one role, whatever thread calls."""
        for frame, _ in traceback.walk_stack(None):
            for directory, principal in self._code_principals:
                if frame.f_code.co_filename.startswith(directory):
                    return principal  # None: not restricted
        return getattr(threading.current_thread(), _STARTED_BY, None)


# --- what a call needs: the IAM action and resource, and the KMS use AWS implies ---------------------------------


def _encrypted(template: dict[str, Any], resolver: _Resolver, type_: str, property_: str) -> set[str]:
    """Refs of the template's resources of `type_` that name a KMS key in `property_`."""
    return {
        str(resolver.ref(logical_id))
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == type_ and property_ in resource.get("Properties", {})
    }


def _needed(
    iam: LocalIam, service: str, operation: str, params: dict[str, Any], region: str
) -> list[tuple[str, str, dict[str, str]]]:
    """(action, resource ARN, condition keys) for each permission the call needs."""
    arn = f"arn:aws:{{}}:{region}:{ACCOUNT_ID}:{{}}"
    action = f"{service}:{operation}"
    needed: list[tuple[str, str, dict[str, str]]] = []
    # "No permissions are required": https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html
    if action == "sts:GetCallerIdentity":
        return []
    key_arn: str | None = None
    if service == "sqs":
        operation = operation.removesuffix("Batch")
        action = f"sqs:{operation}"
        name = urlparse(params["QueueUrl"]).path.rsplit("/", 1)[-1] if "QueueUrl" in params else params["QueueName"]
        needed.append((action, arn.format("sqs", name), {}))
        for stack in iam.stacks:
            resolver = _Resolver(iam.template, stack)
            if params.get("QueueUrl") in _encrypted(iam.template, resolver, "AWS::SQS::Queue", "KmsMasterKeyId"):
                key_arn = stack.attributes["EncryptionKey", "Arn"]
        if key_arn and operation == "SendMessage":
            needed += [("kms:GenerateDataKey", key_arn, {}), ("kms:Decrypt", key_arn, {})]
        elif key_arn and operation == "ReceiveMessage":
            needed.append(("kms:Decrypt", key_arn, {}))
    elif service == "dynamodb" and "TableName" in params:
        table = arn.format("dynamodb", f"table/{params['TableName']}")
        # An item's partition key, for a statement that names the items a role may touch
        # (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html)
        key = [next(iter(value.values())) for value in params.get("Key", {}).values()][:1]
        leading = {"dynamodb:LeadingKeys": str(key[0])} if key else {}
        needed.append((action, f"{table}/index/{params['IndexName']}" if "IndexName" in params else table, leading))
    elif service == "dynamodb" and "StreamArn" in params:
        needed.append((action, params["StreamArn"], {}))
    elif service == "s3" and "Bucket" in params:
        bucket = params["Bucket"]
        if "Key" in params:  # an object: HeadObject is authorised as GetObject, a version's as ...Version
            read = operation in ("GetObject", "HeadObject")
            action = "s3:GetObject" if read else _S3_MULTIPART.get(operation, action)
            action += (
                "Version"
                if params.get("VersionId") and operation in ("GetObject", "HeadObject", "DeleteObject")
                else ""
            )
            needed.append((action, f"arn:aws:s3:::{bucket}/{params['Key']}", {}))
            for stack in iam.stacks:
                resolver = _Resolver(iam.template, stack)
                encrypted_buckets = _encrypted(iam.template, resolver, "AWS::S3::Bucket", "BucketEncryption")
                uses_key = _S3_KMS.get(operation, "kms:Decrypt" if read else None)
                if bucket in encrypted_buckets and uses_key:
                    needed.append((uses_key, stack.attributes["EncryptionKey", "Arn"], {}))
        elif operation in ("ListObjects", "ListObjectsV2", "ListObjectVersions"):
            needed.append(("s3:ListBucketVersions" if "Versions" in operation else "s3:ListBucket",
                           f"arn:aws:s3:::{bucket}", {"s3:prefix": params.get("Prefix", "")}))  # fmt: skip
        else:
            needed.append((action, f"arn:aws:s3:::{bucket}", {}))
    elif service == "secretsmanager" and "SecretId" in params:
        secret = params["SecretId"]
        for stack in iam.stacks:
            for logical_id, resource in iam.template["Resources"].items():
                ref = stack.refs.get(logical_id, "")
                if resource["Type"] == "AWS::SecretsManager::Secret" and secret in (ref, ref.split(":")[-1][:-7]):
                    secret = ref
                    if "KmsKeyId" in resource["Properties"]:
                        key_arn = stack.attributes["EncryptionKey", "Arn"]
        needed.append((action, secret, {}))
        if key_arn and operation in ("GetSecretValue", "PutSecretValue"):
            needed.append(("kms:Decrypt" if operation == "GetSecretValue" else "kms:GenerateDataKey", key_arn, {}))
    elif service == "cloudformation" and "StackName" in params:
        stack = params["StackName"]
        needed.append(
            (action, stack if stack.startswith("arn:") else arn.format("cloudformation", f"stack/{stack}/*"), {})
        )
    elif service == "events" and operation in ("PutRule", "PutTargets", "RemoveTargets", "DeleteRule"):
        bus, rule = params.get("EventBusName", "default"), params.get("Name") or params.get("Rule")
        needed.append((action, arn.format("events", f"rule/{bus}/{rule}" if bus != "default" else f"rule/{rule}"), {}))
    elif service == "lambda" and operation == "Invoke":
        name = params["FunctionName"]
        needed.append(
            ("lambda:InvokeFunction", name if name.startswith("arn:") else arn.format("lambda", f"function:{name}"), {})
        )
    elif service == "events" and operation == "PutEvents":
        for bus in {entry.get("EventBusName", "default") for entry in params.get("Entries", [])}:
            needed.append((action, bus if bus.startswith("arn:") else arn.format("events", f"event-bus/{bus}"), {}))
    else:
        needed.append((action, "*", {}))
    via = {"kms:ViaService": f"{service}.{region}.amazonaws.com"}
    return [(a, r, via if a.startswith("kms:") else c) for a, r, c in needed]


# A multipart upload is authorised as s3:PutObject, but its abort; with SSE-KMS it needs kms:GenerateDataKey and
# kms:Decrypt (S3 reads the encrypted parts to complete it):
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html#mpuAndPermissions
_S3_MULTIPART = {
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
}
_S3_KMS = {"PutObject": "kms:GenerateDataKey", "CreateMultipartUpload": "kms:GenerateDataKey",
           "UploadPart": "kms:GenerateDataKey", "CompleteMultipartUpload": "kms:Decrypt"}  # fmt: skip


def lambda_service_needs(iam: LocalIam, function: str) -> list[tuple[str, str, dict[str, str]]]:
    """What the Lambda service does with the function's role, for its event sources, logs, traces and environment:
    - SQS event source: ReceiveMessage, DeleteMessage, GetQueueAttributes (and the key of an encrypted queue)
      https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html#events-sqs-permissions
    - DynamoDB stream: DescribeStream, GetRecords, GetShardIterator, ListStreams; SendMessage to an on-failure queue
      https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-eventsourcemapping.html
    - logs:CreateLogStream and logs:PutLogEvents on its log group
      https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs.html
    - xray:PutTraceSegments and xray:PutTelemetryRecords with active tracing
      https://docs.aws.amazon.com/lambda/latest/dg/services-xray.html
    - kms:Decrypt of the environment with a customer managed key
      https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars-encryption.html
    """
    stack = iam.stacks[0]
    resolver = _Resolver(iam.template, stack)
    properties = resolver.value(iam.template["Resources"][function]["Properties"])
    key = stack.attributes["EncryptionKey", "Arn"]
    via = {"kms:ViaService": f"{{}}.{stack.region}.amazonaws.com"}

    def kms(action: str, service: str) -> tuple[str, str, dict[str, str]]:
        return (action, key, {"kms:ViaService": via["kms:ViaService"].format(service)})

    group = properties["LoggingConfig"]["LogGroup"]
    log_stream = f"arn:aws:logs:{stack.region}:{ACCOUNT_ID}:log-group:{group}:log-stream:2026/01/01/[$LATEST]0"
    needs: list[tuple[str, str, dict[str, str]]] = [
        ("logs:CreateLogStream", log_stream, {}),
        ("logs:PutLogEvents", log_stream, {}),
    ]
    if properties.get("TracingConfig", {}).get("Mode") == "Active":
        needs += [("xray:PutTraceSegments", "*", {}), ("xray:PutTelemetryRecords", "*", {})]
    if "KmsKeyArn" in properties:
        needs.append(kms("kms:Decrypt", "lambda"))
    for resource in iam.template["Resources"].values():
        if resource["Type"] != "AWS::Lambda::EventSourceMapping":
            continue
        mapping = resolver.value(resource["Properties"])
        if mapping["FunctionName"] != function:
            continue
        source = mapping["EventSourceArn"]
        if source.startswith("arn:aws:sqs:"):
            needs += [(f"sqs:{a}", source, {}) for a in ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes")]
            needs.append(kms("kms:Decrypt", "sqs"))
        else:
            needs += [(f"dynamodb:{a}", source, {}) for a in ("DescribeStream", "GetRecords", "GetShardIterator")]
            needs.append(("dynamodb:ListStreams", "*", {}))
        on_failure = mapping.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        if on_failure:
            needs += [("sqs:SendMessage", on_failure, {}), kms("kms:GenerateDataKey", "sqs"), kms("kms:Decrypt", "sqs")]
    return needs


# --- the hooks on every boto3 client ------------------------------------------------------------------------------

_iam: LocalIam | None = None


def enforce(resources: dict[str, str], region: str, endpoint_url: str, stack_name: str = "local") -> LocalIam:
    """Decide every later AWS call of this process's functions by their roles, for the stack `resources` (the
    environment create_resources() returns) on the moto server at `endpoint_url`."""
    global _iam
    if _iam is None:
        _iam = LocalIam(transformed_template())
        # Every botocore session registers BUILTIN_HANDLERS when it is made: so do the sessions boto3, Powertools
        # and the CLI make later. The session boto3 already made gets the hooks directly.
        hooks: list[tuple[str, Callable[..., Any]]] = [
            ("before-parameter-build", _before_parameter_build),
            ("before-call", _before_call),
            ("after-call.s3", _after_s3_call),
        ]
        botocore.handlers.BUILTIN_HANDLERS.extend(hooks)
        if boto3.DEFAULT_SESSION is not None:
            for event, handler in hooks:
                boto3.DEFAULT_SESSION.events.register(event, handler)
        threading.Thread.start = _start_noting_principal  # type: ignore[method-assign]
    _iam.add_stack(local_stack(resources, region, endpoint_url, stack_name))
    return _iam


def current() -> LocalIam | None:
    return _iam


_STARTED_BY = "local_iam_started_by"
_start_thread = threading.Thread.start


def _start_noting_principal(self: threading.Thread) -> None:
    """Thread.start, noting who starts it: the principal of the code (or acting_as block) on the starting stack."""
    principal = _acting_as.get() or (_iam.principal_of_code() if _iam is not None else None)
    setattr(self, _STARTED_BY, principal)
    _start_thread(self)


@contextmanager
def acting_as(logical_id: str) -> Iterator[None]:
    """AWS calls in the block run under the role or managed policy `logical_id` (upstream's, an operator's)."""
    token = _acting_as.set(logical_id)
    try:
        yield
    finally:
        _acting_as.reset(token)


@contextmanager
def as_upstream(logical_id: str) -> Iterator[None]:
    """Under the managed policy `logical_id` when the template has it (upstream's), else not restricted."""
    if _iam is not None and _iam.has(logical_id):
        with acting_as(logical_id):
            yield
    else:
        yield


def running_as(logical_id: str, target: Callable[[], None]) -> Callable[[], None]:
    """`target` run under `logical_id` (a thread's target: a thread does not inherit acting_as)."""

    def run() -> None:
        with acting_as(logical_id):
            target()

    return run


def _before_parameter_build(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    if _iam is None:
        return
    principal = _acting_as.get() or _iam.principal_of_code()
    if principal is None:
        return
    service = model.service_model.signing_name
    region = context.get("client_region") or _iam.stacks[0].region
    decided = [_iam.decide(principal, *need) for need in _needed(_iam, service, model.name, params, region)]
    context["local_iam"] = (principal, decided, params)


def _before_call(model: Any, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
    principal, decided, _params = context.get("local_iam", (None, [], None))
    denied = next((call for call in decided if not call.allowed), None)
    if denied is None:
        return None
    protocol_code = "AccessDenied" if model.service_model.signing_name in ("s3", "sqs") else "AccessDeniedException"
    code = "403" if model.name == "HeadObject" else protocol_code  # a HEAD answer has no body to name it
    message = (
        f"User: arn:aws:sts::{ACCOUNT_ID}:assumed-role/{principal}/local is not authorized to perform: "
        f"{denied.action} on resource: {denied.resource} because no identity-based policy allows the "
        f"{denied.action} action"
    )
    parsed = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 403}}
    return AWSResponse("https://local-iam", 403, HTTPHeaders(), None), parsed


def _after_s3_call(http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    """A read of a missing key is 403 unless the caller may list the bucket (API_HeadObject.html, see above)."""
    principal, _decided, params = context.get("local_iam", (None, [], None))
    if principal is None or _iam is None or model.name not in ("GetObject", "HeadObject"):
        return
    if http_response.status_code != 404:
        return
    call = _iam.decide(principal, "s3:ListBucket", f"arn:aws:s3:::{params['Bucket']}", {})
    if not call.allowed:
        http_response.status_code = 403
        code = "403" if model.name == "HeadObject" else "AccessDenied"
        parsed["Error"] = {"Code": code, "Message": "Forbidden" if code == "403" else "Access Denied"}
        parsed["ResponseMetadata"]["HTTPStatusCode"] = 403
