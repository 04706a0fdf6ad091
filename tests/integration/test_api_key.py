"""The ApiKey from Secrets Manager (moto over HTTP), cached for its max age."""

import json
import uuid

import boto3
import pytest
from conftest import FakeClock
from eprom.api_key import ApiKeyConfigurationError, ApiKeys, ApiKeySource, load_api_keys


def secret(aws, value: str) -> str:
    name = f"test-secret-{uuid.uuid4()}"
    boto3.client("secretsmanager").create_secret(Name=name, SecretString=value)
    return name


def test_json_secret_with_previous_keys(aws) -> None:
    name = secret(aws, json.dumps({"apiKey": "current", "previousApiKeys": ["old-1", "old-2"]}))
    keys = load_api_keys(name, max_age_seconds=60)
    assert keys == ApiKeys("current", ("old-1", "old-2"))
    assert keys.accepted == ("current", "old-1", "old-2")
    assert "current" not in repr(keys)


def test_bare_string_secret(aws) -> None:
    assert load_api_keys(secret(aws, "just-the-key\n"), max_age_seconds=60) == ApiKeys("just-the-key")


@pytest.mark.parametrize(
    "value", [json.dumps({"apiKey": ""}), json.dumps({"apiKey": "  "}), json.dumps({"other": "x"}), "[1]", "  "]
)
def test_a_missing_or_empty_key_is_a_configuration_error(aws, value: str) -> None:
    name = secret(aws, value)
    with pytest.raises(ApiKeyConfigurationError, match=name):
        load_api_keys(name, max_age_seconds=60)


def test_previous_keys_must_be_strings(aws) -> None:
    with pytest.raises(ApiKeyConfigurationError, match="previousApiKeys"):
        load_api_keys(secret(aws, json.dumps({"apiKey": "k", "previousApiKeys": "old"})), max_age_seconds=60)


def test_the_key_is_cached_for_max_age(aws) -> None:
    name = secret(aws, json.dumps({"apiKey": "first"}))
    secrets = boto3.client("secretsmanager")
    assert load_api_keys(name, max_age_seconds=0).current == "first"  # cached with a max age passed at once
    secrets.put_secret_value(SecretId=name, SecretString=json.dumps({"apiKey": "second"}))
    assert load_api_keys(name, max_age_seconds=60).current == "second"  # max age passed: fetched again
    secrets.put_secret_value(SecretId=name, SecretString=json.dumps({"apiKey": "third"}))
    assert load_api_keys(name, max_age_seconds=60).current == "second"  # served from the cache, no call


def test_refresh_reads_the_secret_again_at_once_but_not_more_than_once_per_interval(aws) -> None:
    name = secret(aws, json.dumps({"apiKey": "first"}))
    clock = FakeClock()
    source = ApiKeySource(name, max_age_seconds=300, min_refresh_seconds=10, clock=clock)
    assert source.current() == "first"
    boto3.client("secretsmanager").put_secret_value(SecretId=name, SecretString=json.dumps({"apiKey": "second"}))
    assert source.current() == "first"  # cached for 300 s
    assert source.refresh() == ApiKeys("second")
    assert source.current() == "second"  # the refresh also renewed the cache
    clock.advance(5)
    assert source.refresh() is None  # asked again within the interval: not read
    clock.advance(5)
    assert source.refresh() == ApiKeys("second")
