"""Print the callback API's OpenAPI schema, as the Powertools resolver generates it (make openapi)."""

import json
import os

# The resolver lives in the handler module, which reads its settings at import; the schema needs none of them.
for name, placeholder in {
    "FORM_ORDERS_TABLE": "FormOrdersTable",
    "EPROM_API_KEY_SECRET_ID": "EpromApiKeySecret",
    "FORM_RESULTS_BUCKET": "FormResultsBucket",
    "MESSAGES_TABLE": "MessagesTable",
    "OUTCOME_BUS_NAME": "OutcomeBus",
    "AWS_DEFAULT_REGION": "eu-north-1",
    "POWERTOOLS_METRICS_NAMESPACE": "EpromIntegration",
}.items():
    os.environ.setdefault(name, placeholder)


def callback_openapi() -> str:
    from status_callback.app import app

    schema = app.get_openapi_json_schema(
        title="ePROM callback endpoint",
        version="1",
        description="ePROM (Hemit) PUTs order status and form returns, letters' fates and privacy-setting changes "
        "here; ApiBaseUrl is the stack output.",
    )
    return json.dumps(json.loads(schema), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(callback_openapi(), end="")
