"""A function that cannot start says which environment variables to set or fix, and never echoes their values."""

import pytest
from eprom.settings import SettingsError
from fetch_signed_document.settings import FetcherSettings
from place_order.settings import PlacerSettings
from publish_outcomes.settings import PublisherSettings
from status_callback.settings import CallbackSettings

from local.aws_resources import load_template

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
    required = {name.upper() for name, field in settings.model_fields.items() if field.is_required()}
    assert required and required <= variables

    with pytest.raises(SettingsError) as refused:
        settings.from_environment({})
    assert all(f"{variable}: Field required" in str(refused.value) for variable in required)


def test_an_unusable_value_is_named_without_its_value() -> None:
    environment = {"EPROM_API_BASE_URL": "not-a-url-7f3a", "API_KEY_MAX_AGE_SECONDS": "-7f3a"}
    with pytest.raises(SettingsError) as refused:
        FetcherSettings.from_environment(environment)
    assert "EPROM_API_BASE_URL: Input should be a valid URL" in str(refused.value)
    assert "API_KEY_MAX_AGE_SECONDS:" in str(refused.value)
    assert "7f3a" not in str(refused.value)
    assert refused.value.__cause__ is None and refused.value.__suppress_context__  # no ValidationError with inputs
