"""`eprom preflight` and `make deploy`'s merge of parameters: what a deploy needs, checked against an account
(the moto server here), and a stage's parameters kept whole when one is added on the command line."""

import shlex
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


def test_make_deploy_builds_and_deploys_with_every_parameter_of_the_stage() -> None:
    from buildtools import deploy

    stage = preflight.load_stage("qa", preflight.parse_parameters("LogRetentionDays=30 Architecture=x86_64"))
    command = deploy.sam_deploy_command("sam", stage)
    assert command[:5] == ["sam", "deploy", "--config-env", "qa", "--parameter-overrides"]
    expected = {
        "Stage=qa", "EpromApiBaseUrl=https://pasientrapportering.qa.nhn.no/webapi", "AllowSyntheticNationalIds=true",
        "AllowTestModeOrders=true", "LogRetentionDays=30", "Architecture=x86_64",
    }  # fmt: skip
    assert set(command[5:]) == expected
    # the build gets the same parameters: the layer is built for the Architecture the functions run on
    [overrides] = [word for word in deploy.build_command(stage) if word.startswith("PARAMETER_OVERRIDES=")]
    assert set(shlex.split(overrides.removeprefix("PARAMETER_OVERRIDES="))) == expected
    assert deploy.architecture(stage) == "x86_64"
    assert deploy.architecture(preflight.load_stage("qa")) == "arm64"  # the template's default


def test_an_unknown_stage_or_a_malformed_parameter_is_one_line() -> None:
    with pytest.raises(preflight.StageError, match=r"no stage 'staging'.*stages: dev, test, qa, prod"):
        preflight.load_stage("staging")
    with pytest.raises(preflight.StageError, match="not a parameter"):
        preflight.parse_parameters("LogRetentionDays")


@pytest.mark.slow
def test_a_fresh_account_without_the_api_gateway_logging_role_is_a_problem_fixed_by_account_setup(account) -> None:
    result = CliRunner().invoke(app, ["preflight", "--stage", "test"])
    assert result.exit_code == 1, result.output
    assert "ok       credentials: account 123456789012, region eu-north-1" in result.output
    assert "ok       stack: eprom-integration-test does not exist yet" in result.output
    assert "problem  API Gateway logging role: none in eu-north-1" in result.output
    assert "`make account-setup STAGE=test` (eprom preflight --fix)" in result.output

    fixed = CliRunner().invoke(app, ["--stage", "test", "preflight", "--fix"])
    assert fixed.exit_code == 0, fixed.output
    role = f"arn:aws:iam::123456789012:role/{preflight.LOGGING_ROLE_NAME}"
    assert f"API Gateway logging role: {role} set for the account in eu-north-1" in fixed.output
    assert boto3.client("apigateway").get_account()["cloudwatchRoleArn"] == role
    policy = boto3.client("iam").get_role_policy(RoleName=preflight.LOGGING_ROLE_NAME,
                                                 PolicyName="push-to-cloudwatch-logs")["PolicyDocument"]  # fmt: skip
    assert policy["Statement"][0]["Action"] == preflight.LOGGING_ACTIONS
    again = CliRunner().invoke(app, ["--stage", "test", "preflight", "--fix"])
    assert again.exit_code == 0 and "set already" in again.output
    boto3.client("iam").delete_role_policy(RoleName=preflight.LOGGING_ROLE_NAME, PolicyName="push-to-cloudwatch-logs")
    boto3.client("iam").delete_role(RoleName=preflight.LOGGING_ROLE_NAME)


def test_without_credentials_the_checks_that_need_no_aws_still_run(monkeypatch, tmp_path) -> None:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    stage = preflight.load_stage("test", {"Architecture": "x86", "CreateApiGatewayAccountLoggingRole": "true"})
    report = preflight.preflight(stage, boto3.Session())
    assert "region: eu-north-1 (health data stays in the EEA)" in report.passed
    assert "parameters: Architecture=x86, not one of arm64, x86_64" in report.problems
    removed = "CreateApiGatewayAccountLoggingRole is not a parameter of template.yaml (removed: the account's role"
    assert any(problem.startswith(f"parameters: {removed}") for problem in report.problems)
    assert report.problems[-1].startswith("credentials: cannot identify the caller (NoCredentialsError)")


def test_the_endpoint_modes_need_the_vpcs_dns_attributes(account) -> None:
    """CloudFormation refuses an interface endpoint with private DNS in a VPC without DNS hostnames (the default of a
    VPC made by API, CloudFormation or Terraform)."""
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    stage = preflight.load_stage("test", {"VpcId": vpc, "VpcSubnetIds": "subnet-1", "CreateVpcEndpoints": "true",
                                          "VpcRouteTableIds": "rtb-1"})  # fmt: skip
    report = preflight.preflight(stage, boto3.Session())
    [problem] = [line for line in report.problems if line.startswith(f"VPC {vpc}")]
    assert "enableDnsHostnames off" in problem and "enableDnsSupport" not in problem
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    report = preflight.preflight(stage, boto3.Session())
    assert f"VPC {vpc}: DNS support and DNS hostnames on (the interface endpoints' private DNS)" in report.passed
    nat = preflight.load_stage("test", {"VpcId": vpc, "VpcSubnetIds": "subnet-1"})  # a NAT: no endpoints of ours
    assert not [line for line in preflight.preflight(nat, boto3.Session()).passed if line.startswith("VPC")]


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
