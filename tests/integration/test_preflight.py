"""`eprom preflight` and `make deploy`'s merge of parameters: what a deploy needs, checked against an account
(the moto server here), and a stage's parameters kept whole when one is added on the command line."""

import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from eprom_cli import preflight
from eprom_cli.app import app
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def account(aws: dict[str, str]) -> dict[str, str]:
    """The moto account without API Gateway's logging role (a fresh account), restored after the test."""
    gateway = boto3.client("apigateway")
    yield aws
    gateway.update_account(patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": ""}])


def test_extra_parameters_are_merged_into_the_stage_not_put_in_its_place() -> None:
    stage = preflight.load_stage("test", preflight.parse_parameters('LogRetentionDays=7 AlarmEmail="ops@example.org"'))
    assert stage.stack_name == "eprom-integration-test"
    assert stage.parameters["AllowSyntheticNationalIds"] == "true"  # kept from samconfig.toml
    assert stage.parameters["EpromApiBaseUrl"] == "https://proms.hemitdev.org/promswebapi"
    assert stage.parameters["LogRetentionDays"] == "7"  # replaced by name
    assert stage.parameters["AlarmEmail"] == "ops@example.org"


def test_make_deploy_runs_sam_with_every_parameter_of_the_stage() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "buildtools.deploy", "qa", "--sam", "sam", "--params", "LogRetentionDays=30",
         "--dry-run"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert printed[:5] == ["sam", "deploy", "--config-env", "qa", "--parameter-overrides"]
    assert set(printed[5:]) == {
        "Stage=qa", "EpromApiBaseUrl=https://pasientrapportering.qa.nhn.no/webapi", "AllowSyntheticNationalIds=true",
        "AllowTestModeOrders=true", "LogRetentionDays=30",
    }  # fmt: skip


def test_an_unknown_stage_or_a_malformed_parameter_is_one_line() -> None:
    with pytest.raises(preflight.StageError, match=r"no stage 'staging'.*stages: dev, test, qa, prod"):
        preflight.load_stage("staging")
    with pytest.raises(preflight.StageError, match="not a parameter"):
        preflight.parse_parameters("LogRetentionDays")


@pytest.mark.slow
def test_a_fresh_account_without_the_api_gateway_logging_role_is_a_problem_named_with_its_fix(account) -> None:
    result = CliRunner().invoke(app, ["preflight", "--stage", "test"])
    assert result.exit_code == 1, result.output
    assert "ok       credentials: account 123456789012, region eu-north-1" in result.output
    assert "ok       stack: eprom-integration-test does not exist yet" in result.output
    assert "problem  API Gateway logging role: none in eu-north-1" in result.output
    assert "CreateApiGatewayAccountLoggingRole=true" in result.output

    result = CliRunner().invoke(app, ["preflight", "--stage", "test", "-p", "CreateApiGatewayAccountLoggingRole=true"])
    assert "ok       API Gateway logging role: none yet; this deploy creates it" in result.output


@pytest.mark.slow
def test_an_account_ready_for_the_stage_passes(account) -> None:
    boto3.client("apigateway").update_account(
        patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": "arn:aws:iam::123456789012:role/a"}]
    )
    result = CliRunner().invoke(app, ["preflight", "--stage", "test"])
    assert "problem" not in result.output
    assert result.exit_code == 0, result.output
    assert "ok       API Gateway logging role: set for the account" in result.output


def test_a_region_outside_the_eea_and_a_prod_that_allows_synthetic_ids_are_problems(account, tmp_path) -> None:
    samconfig = tmp_path / "samconfig.toml"
    samconfig.write_text(
        '[prod.deploy.parameters]\nstack_name = "x"\nregion = "us-east-1"\n'
        'parameter_overrides = "Stage=prod EpromApiBaseUrl=https://example.org AllowSyntheticNationalIds=true"\n'
    )
    report = preflight.preflight(preflight.load_stage("prod", samconfig=samconfig), boto3.Session())
    assert "region: us-east-1 is outside the EEA; health data must stay there" in report.problems
    assert "parameters: prod must have AllowSyntheticNationalIds=false" in report.problems


def test_a_stack_that_exists_is_reported_with_its_state(account) -> None:
    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(
        StackName="eprom-integration-test",
        TemplateBody='{"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}',
    )
    try:
        report = preflight.preflight(preflight.load_stage("test"), boto3.Session())
        assert "stack: eprom-integration-test is CREATE_COMPLETE" in report.passed
    finally:
        cloudformation.delete_stack(StackName="eprom-integration-test")


def test_more_upstream_accounts_than_the_privacy_function_has_permissions_for_is_a_problem(account, tmp_path) -> None:
    samconfig = tmp_path / "samconfig.toml"
    accounts = ",".join(f"21098765432{digit}" for digit in range(6))
    samconfig.write_text(
        '[qa.deploy.parameters]\nstack_name = "x"\nregion = "eu-north-1"\n'
        f'parameter_overrides = "Stage=qa EpromApiBaseUrl=https://example.org UpstreamAccountIds={accounts}"\n'
    )
    report = preflight.preflight(preflight.load_stage("qa", samconfig=samconfig), boto3.Session())
    assert any("UpstreamAccountIds lists 6 accounts" in problem for problem in report.problems)
    five = preflight.load_stage("qa", {"UpstreamAccountIds": accounts.rsplit(",", 1)[0]}, samconfig=samconfig)
    assert not any("UpstreamAccountIds" in problem for problem in preflight.preflight(five, boto3.Session()).problems)
