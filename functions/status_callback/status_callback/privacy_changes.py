"""One replication callback, PUT /api/PersonvernInnstilling: a change a person made to a privacy setting on
Helsenorge, which ePROM forwards as `{nationalId, id, name, status}` (eprom-contract.md §8).

ePROM sends the ApiKey "in a header" without naming it: `Authorization: Basic <key>`, an `ApiKey` header and an
`apiKey` member of the body are all read, and every key found is compared in constant time with the current and the
previous keys (callbacks.authenticate). The change is stored as received, the key's member cut out (as a form
return's answers are), under a key made of its content, and only then announced as PrivacySettingChanged and
acknowledged: the same change sent again finds its object and is the same event (same id, same content).
"""

from collections.abc import Mapping
from datetime import UTC, datetime

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from eprom.api_key import ApiKeySource
from eprom.national_id import redact
from eprom.outcome_bus import OutcomeBus
from eprom.outcomes import as_events, privacy_setting_changed
from eprom.privacy import PrivacyChange, Unreadable, json_object
from eprom.results_store import ResultsStore

from status_callback.callbacks import answers_document, authenticate
from status_callback.router import Unreadable as UnreadableChange

logger = Logger(child=True)
metrics = Metrics()


def presented_keys(headers: Mapping[str, list[str]], body: dict[str, object]) -> list[str]:
    """Every ApiKey the callback carries: `Authorization: Basic <key>`, `ApiKey: <key>` (header names in any case,
    each value of a header sent more than once) and the body's `apiKey` (the name in any case, as for
    PromsFormOrder)."""
    found = []
    for name, values in headers.items():
        for value in values:
            if name.lower() == "authorization" and value[:6].lower() == "basic ":
                found.append(value[6:].strip())
            elif name.lower() == "apikey":
                found.append(value.strip())
    found += [value for name, value in body.items() if name.lower() == "apikey" and isinstance(value, str)]
    return found


def receive_privacy_change(
    received: str,
    headers: Mapping[str, list[str]],
    *,
    api_keys: ApiKeySource,
    results: ResultsStore,
    bus: OutcomeBus,
) -> None:
    try:
        body = json_object(received)
    except Unreadable as problem:
        raise UnreadableChange(f"body: {problem}") from None
    authenticate(presented_keys(headers, body), api_keys)
    try:
        change = PrivacyChange.from_body(body)
    except Unreadable as problem:
        raise UnreadableChange(str(problem)) from None
    pvk_id = change.pvk_id
    stored = results.put_privacy_change(pvk_id, answers_document(received), received_at=datetime.now(UTC).isoformat())
    event = privacy_setting_changed(pvk_id=pvk_id, name=redact(change.name) if change.name else None,
                                    status=change.status, change=stored.pointer, bucket=results.bucket,
                                    received_at=stored.received_at)  # fmt: skip
    bus.put(as_events([event]))
    metrics.add_metric(name="PrivacyChangesStored", unit=MetricUnit.Count, value=1)
    logger.info("privacy change stored and announced", pvk_id=pvk_id, status=change.status, event_id=event.event_id,
                change_bytes=stored.pointer.bytes)  # fmt: skip
