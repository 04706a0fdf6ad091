"""What a deploy of a stage needs from the AWS account, checked before `sam deploy` runs (`eprom preflight`,
`make deploy`): one line per check, so a first deploy does not fail half-way on something knowable in advance.

A stage is a section of samconfig.toml; its parameter_overrides are the stage's parameters, and extra ones given
on the command line are merged into them by name (sam's own --parameter-overrides replaces the whole list).
"""

import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from eprom_cli.target import CLIENT_CONFIG

SAMCONFIG = Path(__file__).resolve().parent.parent.parent / "samconfig.toml"
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


@dataclass
class Report:
    passed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def preflight(stage: Stage, session: Any) -> Report:
    """Every check, each independent of the others' outcome (one report lists everything to fix)."""
    report = Report()
    client = _clients(session, stage.region)
    _check_region(stage, report)
    try:
        account = client("sts").get_caller_identity()["Account"]
    except (ClientError, BotoCoreError) as error:
        report.problems.append(f"credentials: cannot identify the caller ({_reason(error)}); set AWS_PROFILE")
        return report
    report.passed.append(f"credentials: account {account}, region {stage.region}")
    for check in (_check_stack, _check_sam_bucket, _check_api_gateway_logging_role, _check_lambda_concurrency):
        try:
            check(stage, client, report)
        except (ClientError, BotoCoreError) as error:
            report.notes.append(f"{check.__name__.removeprefix('_check_')}: could not check ({_reason(error)})")
    _check_parameters(stage, report)
    return report


def _clients(session: Any, region: str) -> Any:
    return lambda service: session.client(service, region_name=region, config=CLIENT_CONFIG)


def _reason(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "error"))
    return type(error).__name__


def _check_region(stage: Stage, report: Report) -> None:
    if stage.region.startswith(EEA_REGION_PREFIX):
        report.passed.append(f"region: {stage.region} (health data stays in the EEA)")
    else:
        report.problems.append(f"region: {stage.region} is outside the EEA; health data must stay there")


def _stack_status(client: Any, name: str) -> str | None:
    try:
        return client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
    except ClientError as error:
        if "does not exist" in str(error.response.get("Error", {}).get("Message", "")):
            return None
        raise


def _check_stack(stage: Stage, client: Any, report: Report) -> None:
    status = _stack_status(client, stage.stack_name)
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


def _check_sam_bucket(stage: Stage, client: Any, report: Report) -> None:
    status = _stack_status(client, SAM_MANAGED_BUCKET_STACK)
    if status is None:
        report.passed.append("artefact bucket: sam deploy creates its managed bucket on the first deploy")
    elif status in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        report.passed.append(f"artefact bucket: {SAM_MANAGED_BUCKET_STACK} is {status}")
    else:
        report.problems.append(f"artefact bucket: stack {SAM_MANAGED_BUCKET_STACK} is {status}; fix or delete it")


def _check_api_gateway_logging_role(stage: Stage, client: Any, report: Report) -> None:
    """A stage with access logs fails to create on an account whose API Gateway has no CloudWatch Logs role
    ("CloudWatch Logs role ARN must be set in account settings to enable logging")."""
    role = client("apigateway").get_account().get("cloudwatchRoleArn")
    creates_role = stage.parameters.get("CreateApiGatewayAccountLoggingRole") == "true"
    if role and creates_role:
        report.problems.append(
            "API Gateway logging role: the account has one already; drop CreateApiGatewayAccountLoggingRole=true "
            "(it would replace the account's setting)"
        )
    elif role:
        report.passed.append("API Gateway logging role: set for the account")
    elif creates_role:
        report.passed.append("API Gateway logging role: none yet; this deploy creates it")
    else:
        report.problems.append(
            f"API Gateway logging role: none in {stage.region}; deploy once with "
            "PARAMS=CreateApiGatewayAccountLoggingRole=true (it sets the account's role)"
        )


def _check_lambda_concurrency(stage: Stage, client: Any, report: Report) -> None:
    """New accounts start with a concurrency of 10; the order source alone may run OrderMaximumConcurrency."""
    limits = client("lambda").get_account_settings()["AccountLimit"]
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


# template.yaml's PrivacySettingsUpstreamAccount1..5
MAX_UPSTREAM_ACCOUNTS = 5


def session_for(profile: str | None = None) -> Any:
    return boto3.Session(profile_name=profile)
