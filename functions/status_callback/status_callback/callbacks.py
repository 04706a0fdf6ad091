"""One ePROM callback: authenticate it by the apiKey in its body, then store it (forward-only, idempotent)."""

import hmac

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from eprom.models import EpromCallback
from eprom.order_store import OrderStore

logger = Logger(child=True)
metrics = Metrics()


class Unauthorized(Exception):
    """The apiKey is missing or is none of the accepted keys."""


def api_key_matches(given: str | None, accepted: tuple[str, ...]) -> bool:
    if not given:
        return False
    given_bytes = given.encode()
    # Compare with every key, in constant time each, so timing tells nothing about which (if any) matched.
    matches = [hmac.compare_digest(given_bytes, key.encode()) for key in accepted]
    return any(matches)


def receive_callback(callback: EpromCallback, *, accepted_keys: tuple[str, ...], store: OrderStore) -> None:
    given = callback.api_key.get_secret_value() if callback.api_key else None
    if not api_key_matches(given, accepted_keys):
        raise Unauthorized
    changed = store.apply_callback(callback)
    metrics.add_metric(name="CallbacksStored" if changed else "CallbacksUnchanged", unit=MetricUnit.Count, value=1)
    logger.info(
        "callback stored" if changed else "callback acknowledged without change (replay or out of date)",
        form_order_id=str(callback.form_order_id),
        form_order_status=getattr(callback.form_order_status, "name", callback.form_order_status),
    )
