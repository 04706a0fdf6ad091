"""A function that cannot start says which environment variables to set or fix, and never echoes their values."""

import dataclasses
import re

import pytest
from eprom.settings import SettingsError
from fetch_signed_document.settings import FetcherSettings
from place_order.settings import PlacerSettings
from publish_outcomes.settings import PublisherSettings
from status_callback.settings import CallbackSettings

from local.aws_resources import load_template

# What PlaceOrderFunction needs set, with usable values
PLACER_ENVIRONMENT = dict.fromkeys(
    ["FORM_ORDERS_TABLE", "IDEMPOTENCY_TABLE", "ORDER_FINGERPRINT_SECRET_ID", "DEAD_LETTER_QUEUE_URL",
     "OUTCOME_BUS_NAME", "EPROM_API_KEY_SECRET_ID"], "x",
) | {"EPROM_API_BASE_URL": "https://proms.hemitdev.org/promswebapi"}  # fmt: skip
FUNCTIONS = {
    "PlaceOrderFunction": PlacerSettings,
    "StatusCallbackFunction": CallbackSettings,
    "PublishOutcomesFunction": PublisherSettings,
    "FetchSignedDocumentFunction": FetcherSettings,
}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_missing_variable_is_named_as_the_template_sets_it(function: str) -> None:
    settings = FUNCTIONS[function]
    resources = load_template()["Resources"]
    variables = set(resources[function]["Properties"].get("Environment", {}).get("Variables", {}))
    variables |= set(load_template()["Globals"]["Function"]["Environment"]["Variables"])
    required = {field.name.upper() for field in dataclasses.fields(settings) if field.default is dataclasses.MISSING}
    assert required and required <= variables

    with pytest.raises(SettingsError) as refused:
        settings.from_environment({})
    assert all(f"{variable}: not set" in str(refused.value) for variable in required)


def test_an_unusable_value_is_named_without_its_value() -> None:
    environment = {"EPROM_API_BASE_URL": "not-a-url-7f3a", "API_KEY_MAX_AGE_SECONDS": "-7f3a"}
    with pytest.raises(SettingsError) as refused:
        FetcherSettings.from_environment(environment)
    assert "EPROM_API_BASE_URL: should be an http(s) URL" in str(refused.value)
    assert "API_KEY_MAX_AGE_SECONDS: should be a whole number" in str(refused.value)
    assert "7f3a" not in str(refused.value)
    assert refused.value.__cause__ is None and refused.value.__context__ is None  # no error quoting the input


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("MAX_CONCURRENT_ORDERS", "0", "should be at least 1"),
        ("MAX_CONCURRENT_ORDERS", "101", "should be at most 100"),
        ("EPROM_REQUESTS_PER_SECOND", "0", "should be greater than 0"),
        ("EPROM_REQUESTS_PER_SECOND", "nan", "should be a finite number"),
        ("ALLOW_TEST_MODE_ORDERS", "maybe", "should be true or false"),
        ("AMBIGUOUS_ORDER_POLICY", "Park", "should be one of park, retry"),
        ("FORM_ORDERS_TABLE", "", "should not be empty"),
        ("EPROM_API_BASE_URL", "ftp://proms.hemitdev.org", "should be an http(s) URL"),
    ],
)
def test_each_rule_refuses_what_it_should(variable: str, value: str, problem: str) -> None:
    assert PlacerSettings.from_environment(PLACER_ENVIRONMENT)  # each case changes one value of a usable environment
    with pytest.raises(SettingsError, match=re.escape(f"PlacerSettings cannot start: {variable}: {problem}")):
        PlacerSettings.from_environment(PLACER_ENVIRONMENT | {variable: value})


def test_values_are_read_as_their_types() -> None:
    settings = PlacerSettings.from_environment(
        PLACER_ENVIRONMENT
        | {
            "MAX_CONCURRENT_ORDERS": "7",
            "EPROM_REQUESTS_PER_SECOND": "2.5",
            "ALLOW_TEST_MODE_ORDERS": "True",
            "AMBIGUOUS_ORDER_POLICY": "retry",
        }
    )
    assert (settings.max_concurrent_orders, settings.eprom_requests_per_second) == (7, 2.5)
    assert settings.allow_test_mode_orders is True and settings.allow_synthetic_national_ids is False
    assert settings.ambiguous_order_policy == "retry" and settings.retry_base_delay_seconds == 30
