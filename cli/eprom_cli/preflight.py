"""What a deploy of a stage needs from the AWS account, checked before `sam deploy` runs (`eprom preflight`,
`make deploy`): one line per check, so a first deploy does not fail half-way on something knowable in advance.

A stage is a section of samconfig.toml; its parameter_overrides are the stage's parameters, and extra ones given
on the command line are merged into them by name (sam's own --parameter-overrides replaces the whole list).
"""

import json
import re
import shlex
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from eprom_cli.target import CLIENT_CONFIG

SAMCONFIG = Path(__file__).resolve().parent.parent.parent / "samconfig.toml"
TEMPLATE = SAMCONFIG.with_name("template.yaml")
# Health data stays in the EEA (Normen); every stage in samconfig.toml names its region.
EEA_REGION_PREFIX = "eu-"
SAM_MANAGED_BUCKET_STACK = "aws-sam-cli-managed-default"
# A stack in one of these states cannot be updated: it must be deleted (ROLLBACK_COMPLETE: a failed first create)
# or waited for. https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-describing-stacks.html
_BLOCKING_STATES = ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED", "UPDATE_ROLLBACK_FAILED")
# Functions with an SQS event source that the stack bounds with MaximumConcurrency (template.yaml), plus one each
# for the callback and the stream publisher: what the account's unreserved concurrency must at least allow.
_OTHER_FUNCTIONS_CONCURRENCY = 2 + 1 + 1


class StageError(Exception):
    """The stage is not in samconfig.toml, or its parameters cannot be read: one line for the operator."""


@dataclass(frozen=True)
class Stage:
    name: str
    stack_name: str
    region: str
    parameters: dict[str, str]

    def parameter_overrides(self) -> list[str]:
        """For `sam deploy --parameter-overrides`: every parameter of the stage, the merged ones included."""
        return [f"{key}={value}" for key, value in self.parameters.items()]


def parse_parameters(text: str) -> dict[str, str]:
    """`Key=Value Key2="a value"` (samconfig's and sam's syntax) as a dict, in order."""
    parameters = {}
    for word in shlex.split(text):
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise StageError(f"not a parameter (Key=Value): {word}")
        parameters[key] = value
    return parameters


def load_stage(name: str, extra: dict[str, str] | None = None, samconfig: Path = SAMCONFIG) -> Stage:
    config = tomllib.loads(samconfig.read_text())
    deploy = config.get(name, {}).get("deploy", {}).get("parameters")
    if not deploy:
        stages = ", ".join(
            section for section in config if isinstance(config[section], dict) and "deploy" in config[section]
        )
        raise StageError(f"no stage {name!r} in {samconfig.name} (stages: {stages})")
    parameters = parse_parameters(deploy.get("parameter_overrides", "")) | (extra or {})
    return Stage(name, deploy["stack_name"], deploy["region"], parameters)


def region_of_stack(stack_name: str, samconfig: Path = SAMCONFIG) -> str | None:
    """The region samconfig.toml gives the stage whose stack this is (None when no stage names it)."""
    config = tomllib.loads(samconfig.read_text())
    for section in config.values():
        deploy = section.get("deploy", {}).get("parameters", {}) if isinstance(section, dict) else {}
        if deploy.get("stack_name") == stack_name:
            return str(deploy["region"])
    return None


@dataclass
class Report:
    passed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def preflight(stage: Stage, session: boto3.Session) -> Report:
    """Every check, each independent of the others' outcome (one report lists everything to fix). Those that need
    no AWS run without credentials too."""
    report = Report()
    _check_region(stage, report)
    _check_parameters(stage, report)
    try:
        sts = session.client("sts", region_name=stage.region, config=CLIENT_CONFIG)
        account = sts.get_caller_identity()["Account"]
    except (ClientError, BotoCoreError) as error:
        report.problems.append(f"credentials: cannot identify the caller ({_reason(error)}); set AWS_PROFILE (the "
                               "checks of the account were skipped)")  # fmt: skip
        return report
    report.passed.append(f"credentials: account {account}, region {stage.region}")
    for check in (_check_stack, _check_sam_bucket, _check_api_gateway_logging_role, _check_vpc_dns,
                  _check_lambda_concurrency):  # fmt: skip
        try:
            check(stage, session, report)
        except (ClientError, BotoCoreError) as error:
            report.notes.append(f"{check.__name__.removeprefix('_check_')}: could not check ({_reason(error)})")
    return report


def _reason(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "error"))
    return type(error).__name__


def _check_region(stage: Stage, report: Report) -> None:
    if stage.region.startswith(EEA_REGION_PREFIX):
        report.passed.append(f"region: {stage.region} (health data stays in the EEA)")
    else:
        report.problems.append(f"region: {stage.region} is outside the EEA; health data must stay there")


def _stack_status(stage: Stage, session: boto3.Session, name: str) -> str | None:
    cloudformation = session.client("cloudformation", region_name=stage.region, config=CLIENT_CONFIG)
    try:
        return cloudformation.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
    except ClientError as error:
        if "does not exist" in str(error.response.get("Error", {}).get("Message", "")):
            return None
        raise


def _check_stack(stage: Stage, session: boto3.Session, report: Report) -> None:
    status = _stack_status(stage, session, stage.stack_name)
    if status is None:
        report.passed.append(f"stack: {stage.stack_name} does not exist yet (a first deploy)")
    elif status in _BLOCKING_STATES:
        report.problems.append(
            f"stack: {stage.stack_name} is {status}; delete it first (`sam delete --config-env {stage.name}`: the "
            "key, table, bucket and secret are retained and stay behind)"
        )
    elif status.endswith("_IN_PROGRESS"):
        report.problems.append(f"stack: {stage.stack_name} is {status}; wait until it is finished")
    else:
        report.passed.append(f"stack: {stage.stack_name} is {status}")


def _check_sam_bucket(stage: Stage, session: boto3.Session, report: Report) -> None:
    status = _stack_status(stage, session, SAM_MANAGED_BUCKET_STACK)
    if status is None:
        report.passed.append("artefact bucket: sam deploy creates its managed bucket on the first deploy")
    elif status in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        report.passed.append(f"artefact bucket: {SAM_MANAGED_BUCKET_STACK} is {status}")
    else:
        report.problems.append(f"artefact bucket: stack {SAM_MANAGED_BUCKET_STACK} is {status}; fix or delete it")


def _check_api_gateway_logging_role(stage: Stage, session: boto3.Session, report: Report) -> None:
    """A stage with access logs fails to create on an account whose API Gateway has no CloudWatch Logs role
    ("CloudWatch Logs role ARN must be set in account settings to enable logging"):
    https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html"""
    gateway = session.client("apigateway", region_name=stage.region, config=CLIENT_CONFIG)
    if gateway.get_account().get("cloudwatchRoleArn"):
        report.passed.append("API Gateway logging role: set for the account")
    else:
        report.problems.append(
            f"API Gateway logging role: none in {stage.region}; set it once for the account and region: "
            f"`make account-setup STAGE={stage.name}` (eprom preflight --fix)"
        )


def _check_vpc_dns(stage: Stage, session: boto3.Session, report: Report) -> None:
    """The stack's interface endpoints have private DNS, which CloudFormation refuses in a VPC without DNS support
    and DNS hostnames (off by default in a VPC made by API, CloudFormation or Terraform):
    https://docs.aws.amazon.com/vpc/latest/privatelink/create-interface-endpoint.html"""
    vpc = stage.parameters.get("VpcId", "")
    if not vpc or stage.parameters.get("CreateVpcEndpoints") != "true":
        return
    ec2 = session.client("ec2", region_name=stage.region, config=CLIENT_CONFIG)
    support = ec2.describe_vpc_attribute(VpcId=vpc, Attribute="enableDnsSupport")["EnableDnsSupport"]["Value"]
    hostnames = ec2.describe_vpc_attribute(VpcId=vpc, Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"]
    off = [attribute for attribute, on in (("enableDnsSupport", support), ("enableDnsHostnames", hostnames)) if not on]
    if off:
        report.problems.append(
            f"VPC {vpc}: {' and '.join(off)} off; the stack's interface endpoints (private DNS) need both on "
            "(VPC console: Edit VPC settings, or `ModifyVpcAttribute`), or leave CreateVpcEndpoints=false and reach "
            "AWS through a NAT"
        )
    else:
        report.passed.append(f"VPC {vpc}: DNS support and DNS hostnames on (the interface endpoints' private DNS)")


def _check_lambda_concurrency(stage: Stage, session: boto3.Session, report: Report) -> None:
    """New accounts start with a concurrency of 10; the order source alone may run OrderMaximumConcurrency."""
    lambda_ = session.client("lambda", region_name=stage.region, config=CLIENT_CONFIG)
    limits = lambda_.get_account_settings()["AccountLimit"]
    needed = int(stage.parameters.get("OrderMaximumConcurrency", "5")) + _OTHER_FUNCTIONS_CONCURRENCY
    available = limits["UnreservedConcurrentExecutions"]
    if available < needed:
        report.problems.append(
            f"Lambda concurrency: {available} unreserved in the account, the stack may use {needed}; ask for a "
            "higher 'Concurrent executions' quota (Service Quotas, Lambda) or lower OrderMaximumConcurrency"
        )
    else:
        report.passed.append(f"Lambda concurrency: {available} unreserved, the stack may use {needed}")


def _check_parameters(stage: Stage, report: Report) -> None:
    problems_before = len(report.problems)
    declared = template_parameters()
    for name in stage.parameters:
        if name not in declared:
            hint = " (removed: the account's role is set by `make account-setup`)" if name in _REMOVED else ""
            report.problems.append(f"parameters: {name} is not a parameter of template.yaml{hint}")
    for name, allowed in declared.items():
        if allowed and name in stage.parameters and stage.parameters[name] not in allowed:
            report.problems.append(f"parameters: {name}={stage.parameters[name]}, not one of {', '.join(allowed)}")
    if "EpromApiBaseUrl" not in stage.parameters:
        report.problems.append("parameters: EpromApiBaseUrl is not set for this stage")
    if stage.parameters.get("Stage") != stage.name:
        report.problems.append(f"parameters: Stage={stage.parameters.get('Stage')} in stage {stage.name}")
    if stage.name == "prod" and stage.parameters.get("AllowSyntheticNationalIds") != "false":
        report.problems.append("parameters: prod must have AllowSyntheticNationalIds=false")
    accounts = [account for account in stage.parameters.get("UpstreamAccountIds", "").split(",") if account.strip()]
    if len(accounts) > MAX_UPSTREAM_ACCOUNTS:
        report.problems.append(
            f"parameters: UpstreamAccountIds lists {len(accounts)} accounts; PrivacySettingsFunction's resource policy "
            f"takes the first {MAX_UPSTREAM_ACCOUNTS} (one Lambda permission each in template.yaml): the others could "
            "not invoke it"
        )
    if len(report.problems) == problems_before:
        report.passed.append(f"parameters: {len(stage.parameters)} given, each a parameter of template.yaml")


_REMOVED = {"CreateApiGatewayAccountLoggingRole"}
_PARAMETER = re.compile(r"^  (\w+):\n((?:    .*\n|\n)*)", re.MULTILINE)
_ALLOWED_VALUES = re.compile(r"^    AllowedValues: \[(.*)\]$", re.MULTILINE)


def template_parameters(template: Path = TEMPLATE) -> dict[str, list[str]]:
    """template.yaml's parameters, each with its AllowedValues (empty when any value goes)."""
    text = template.read_text()
    section = text[text.index("\nParameters:\n") : text.index("\nRules:\n")] + "\n"
    parameters = {}
    for name, body in _PARAMETER.findall(section):
        allowed = _ALLOWED_VALUES.search(body)
        parameters[name] = [v.strip().strip('"') for v in allowed.group(1).split(",")] if allowed else []
    return parameters


# --- `make account-setup` (eprom preflight --fix): once per account and region -------------------------------------

LOGGING_ROLE_NAME = "eprom-apigateway-cloudwatch-logs"
# The actions of AWS's managed policy AmazonAPIGatewayPushToCloudWatchLogs, which the set-up guide attaches
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html), as an inline policy of the role.
LOGGING_ACTIONS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogGroups", "logs:DescribeLogStreams",
                   "logs:PutLogEvents", "logs:GetLogEvents", "logs:FilterLogEvents"]  # fmt: skip
# IAM is eventually consistent: a new role may not be usable by API Gateway for seconds to a minute
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency),
# so API Gateway's UpdateAccount is tried again until it accepts the role.
ROLE_PROPAGATION_SECONDS = 120


def set_up_logging_role(stage: Stage, session: boto3.Session, *, sleep: Callable[[float], None] = time.sleep,
                        clock: Callable[[], float] = time.monotonic) -> str:  # fmt: skip
    """API Gateway's CloudWatch Logs role for the account and region, made and set unless one is set already:
    https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html. What was done, in a line."""
    gateway = session.client("apigateway", region_name=stage.region, config=CLIENT_CONFIG)
    if role := gateway.get_account().get("cloudwatchRoleArn"):
        return f"API Gateway logging role: set already ({role}); nothing to do"
    iam = session.client("iam", region_name=stage.region, config=CLIENT_CONFIG)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"Service": "apigateway.amazonaws.com"}}]}  # fmt: skip
    try:
        role = iam.create_role(RoleName=LOGGING_ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust),
                               Description="API Gateway writes the account's API logs to CloudWatch Logs "
                               "(eprom preflight --fix)")["Role"]["Arn"]  # fmt: skip
    except ClientError as error:
        if error.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
        role = iam.get_role(RoleName=LOGGING_ROLE_NAME)["Role"]["Arn"]
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": LOGGING_ACTIONS, "Resource": "*"}]}
    iam.put_role_policy(RoleName=LOGGING_ROLE_NAME, PolicyName="push-to-cloudwatch-logs",
                        PolicyDocument=json.dumps(policy))  # fmt: skip
    deadline = clock() + ROLE_PROPAGATION_SECONDS
    while True:
        try:
            gateway.update_account(patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": role}])
            return f"API Gateway logging role: {role} set for the account in {stage.region}"
        except ClientError as error:
            if error.response["Error"]["Code"] != "BadRequestException" or clock() > deadline:
                raise
            sleep(5)  # the role is not usable by API Gateway yet


# template.yaml's PrivacySettingsUpstreamAccount1..5
MAX_UPSTREAM_ACCOUNTS = 5


def session_for(profile: str | None = None) -> boto3.Session:
    return boto3.Session(profile_name=profile)
