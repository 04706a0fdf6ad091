"""Privacy settings (PVK): a person's reservation or consent, and a definition's residents, through
PrivacySettingsFunction, invoked as upstream invokes it (Lambda Invoke). Shown with the national id masked unless
--reveal (rendering)."""

import json
from itertools import islice
from typing import Any

from eprom.national_id import redact

from eprom_cli.target import Target


class PrivacyRefused(Exception):
    """The function did not carry the request out (its error class and reason), or the stack has none."""


def invoke(target: Target, request: dict[str, Any]) -> dict[str, Any]:
    """The function's reply; PrivacyRefused for an error reply or a failed invocation."""
    if not target.privacy_settings_function:
        raise PrivacyRefused(f"{target.name} has no PrivacySettingsFunction (deployed before it existed?)")
    answer = target.client("lambda").invoke(
        FunctionName=target.privacy_settings_function, Payload=json.dumps(request).encode()
    )
    reply: dict[str, Any] = json.loads(answer["Payload"].read())
    if answer.get("FunctionError"):  # Lambda's own report (a timeout, a crash): its type, never its message
        raise PrivacyRefused(f"PrivacySettingsFunction failed ({reply.get('errorType')}); see its log group")
    if "error" in reply:
        raise PrivacyRefused(f"{reply['error']['class']}: {reply['error']['reason']}")
    return reply


def residents(target: Target, listed: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    """The first `limit` lines of the list object a list reply names (read as a stream: never the whole list)."""
    stream = target.client("s3").get_object(Bucket=listed["bucket"], Key=listed["key"], VersionId=listed["versionId"])[
        "Body"
    ]
    try:
        return [json.loads(line) for line in islice(stream.iter_lines(), limit)]
    finally:
        stream.close()


def masked(national_id: str, *, reveal: bool) -> str:
    return national_id if reveal else redact(national_id, mask="*" * 11)
