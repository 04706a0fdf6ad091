"""One ePROM callback: authenticate it by the apiKey in its body, store a form return's answers in S3, then the
callback in the item (status by rank, history, the answers pointer)."""

import hmac
from collections.abc import Sequence

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from eprom.api_key import ApiKeySource
from eprom.models import EpromCallback
from eprom.order_store import OrderStore
from eprom.results_store import ResultsStore

from status_callback.received_json import without_api_key

logger = Logger(child=True)
metrics = Metrics()


class Unauthorized(Exception):
    """The apiKey is missing or is none of the accepted keys."""


def api_key_matches(presented: Sequence[str], accepted: tuple[str, ...]) -> bool:
    """Whether any key presented (a callback may carry one in more than one place) is one of the accepted keys."""
    # Compare each with every key, in constant time each, so timing tells nothing about which (if any) matched.
    matches = [hmac.compare_digest(given.encode(errors="surrogatepass"), key.encode())
               for given in presented if given for key in accepted]  # fmt: skip
    return any(matches)


def authenticate(presented: Sequence[str], api_keys: ApiKeySource) -> None:
    """A key presented must be one the secret holds. On a mismatch the secret is read again (rate-limited) before
    the callback is refused: the key may just have been regenerated in ePROM Admin and put into the secret."""
    if api_key_matches(presented, api_keys.keys().accepted):
        return
    refreshed = api_keys.refresh() if any(presented) else None
    if refreshed is None or not api_key_matches(presented, refreshed.accepted):
        raise Unauthorized
    logger.info("callback key matched after reading the secret again (the key was rotated)")


def answers_document(received: str) -> bytes:
    """The callback as ePROM sent it, minus the key: the received text in UTF-8 (API Gateway hands it over as text;
    a lone surrogate, which only a test event can carry, is kept as it came rather than refused)."""
    return without_api_key(received).encode(errors="surrogatepass")


def receive_callback(
    callback: EpromCallback,
    received: str,
    *,
    api_keys: ApiKeySource,
    store: OrderStore,
    results: ResultsStore,
) -> None:
    authenticate([callback.api_key.get_secret_value()] if callback.api_key else [], api_keys)
    form_order_id = str(callback.form_order_id)
    answers = results.put_answers(form_order_id, answers_document(received)) if callback.is_form_return else None
    changed = store.apply_callback(callback, answers=answers)
    metrics.add_metric(name="CallbacksStored" if changed else "CallbacksUnchanged", unit=MetricUnit.Count, value=1)
    logger.info(
        "callback stored" if changed else "callback acknowledged without change (replay or out of date)",
        form_order_id=form_order_id,
        form_order_status=loggable(callback.form_order_status),
        answers_bytes=answers.bytes if answers else None,
        unreadable_fields=list(callback.unreadable_fields) or None,  # our field names, never input key names
    )


def loggable(status: object) -> str | None:
    """A known status by name; anything else ePROM sent only as its length (it is free text from outside)."""
    if status is None:
        return None
    name = getattr(status, "name", None)
    return name if name else f"(unrecognised, {len(str(status))} characters)"
