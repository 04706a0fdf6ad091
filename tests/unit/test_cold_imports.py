"""What each handler does not import at its cold start, where a package would cost it without a use on its path
(docs/performance.md, "Current figures" and "What the figures rest on"). `make bench` measures the time; this only
keeps the packages out: a change that brings one back fails here, not in the next measurement."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from local.stack import HANDLER_MODULES, LAMBDA_GLOBALS

ROOT = Path(__file__).resolve().parents[2]
EVERY_FUNCTION = {
    "aws_lambda_powertools.event_handler",  # every resolver, AppSync's with asyncio: the callback routes itself
    "aws_lambda_powertools.utilities.parameters",  # eprom.api_key reads the secret itself
    "aws_lambda_powertools.utilities.idempotency",  # the claims are the one exactly-once mechanism
    "eprom.contracts",  # upstream's contracts as pydantic models: the schemas' source, never read by a function
}
NOT_IMPORTED = {
    # Orders and messages are read by hand (eprom.orders, eprom.citizen_messages: no pydantic on these paths), and
    # their refusals are plain JSON (eprom.refusal_events): the event models are the publisher's
    "PlaceOrderFunction": EVERY_FUNCTION
    | {"asyncio", "aws_lambda_powertools.utilities.data_classes", "eprom.privacy", "eprom.outcomes", "pydantic"},
    # PersonvernInnstilling, the rarest route, imports its readers and the events on its first call
    "StatusCallbackFunction": EVERY_FUNCTION | {"asyncio", "requests", "eprom.privacy", "eprom.outcomes"},
    "PublishOutcomesFunction": EVERY_FUNCTION | {"requests"},
    "FetchSignedDocumentFunction": EVERY_FUNCTION
    | {"asyncio", "aws_lambda_powertools.utilities.data_classes", "pydantic", "eprom.privacy"},
    "SendMessageFunction": EVERY_FUNCTION
    | {"asyncio", "aws_lambda_powertools.utilities.data_classes", "eprom.privacy", "eprom.outcomes", "pydantic"},
    "PrivacySettingsFunction": EVERY_FUNCTION | {"asyncio", "aws_lambda_powertools.utilities.data_classes", "pydantic"},
}
# The settings every function reads at import, with placeholder values (no AWS call is made at import)
ENVIRONMENT = dict.fromkeys(
    ["FORM_ORDERS_TABLE", "IDEMPOTENCY_TABLE", "EPROM_API_KEY_SECRET_ID", "ORDER_FINGERPRINT_SECRET_ID",
     "DEAD_LETTER_QUEUE_URL", "OUTCOME_BUS_NAME", "FORM_RESULTS_BUCKET", "SIGNED_DOCUMENT_QUEUE_URL",
     "SIGNED_DOCUMENT_DEAD_LETTER_QUEUE_URL", "MESSAGES_TABLE", "MESSAGE_DOCUMENTS_BUCKET",
     "MESSAGE_DEAD_LETTER_QUEUE_URL"], "x",
) | {"EPROM_API_BASE_URL": "https://proms.hemitdev.org/promswebapi", "AWS_DEFAULT_REGION": "eu-north-1"}  # fmt: skip


@pytest.mark.parametrize("function", HANDLER_MODULES)
def test_a_handler_imports_only_what_its_path_uses(function: str) -> None:
    module = HANDLER_MODULES[function]
    path = [ROOT / "functions" / module.split(".")[0], ROOT / "layers" / "shared"]
    imported = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"],
        env={"PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join(map(str, path))} | ENVIRONMENT | LAMBDA_GLOBALS,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert set(json.loads(imported)) & NOT_IMPORTED[function] == set()
