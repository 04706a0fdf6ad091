"""Print the callback API's OpenAPI schema (make openapi): its routes (status_callback.app.ROUTES) declared on
Powertools' REST resolver, which generates the schema. The function routes them itself (status_callback/router.py);
tests/integration/test_callback_openapi.py holds the two to the same paths, methods and bodies."""

import inspect
import json
import os
from typing import Any

# The routes live in the handler module, which reads its settings at import; the schema needs none of them.
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


def callback_resolver() -> Any:
    """Powertools' REST resolver with each route of the callback API: its path, PUT, its body's model, the replies."""
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
    from eprom.models import CallbackReply
    from status_callback.app import ROUTES
    from status_callback.router import REPLIES

    resolver = APIGatewayRestResolver(enable_validation=True)
    for path, route in ROUTES.items():

        def endpoint(body: Any) -> Any:
            raise NotImplementedError("only declared, for the schema")

        # named and typed as the route: the resolver reads the operation's id and its body's model from them
        endpoint.__name__ = route.handle.__name__
        model = route.model or dict[str, Any]  # a route that reads its body itself: a JSON object
        body = inspect.Parameter("body", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=model)
        endpoint.__signature__ = inspect.Signature([body], return_annotation=Response[CallbackReply])  # type: ignore[attr-defined]
        replies: dict[int, OpenAPIResponse] = {
            status: {"description": description} for status, description in REPLIES.items()
        }
        resolver.put(path, summary=route.summary, responses=replies)(endpoint)
    return resolver


def callback_openapi() -> str:
    schema = callback_resolver().get_openapi_json_schema(
        title="ePROM callback endpoint",
        version="1",
        description="ePROM (Hemit) PUTs order status and form returns, letters' fates and privacy-setting changes "
        "here; ApiBaseUrl is the stack output.",
    )
    return json.dumps(json.loads(schema), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(callback_openapi(), end="")
