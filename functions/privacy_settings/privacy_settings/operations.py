"""One request to PrivacySettingsFunction: get, set or list, answered with a typed reply (architecture.md,
"Privacy settings (PVK)"). Every reply is one of eprom.privacy's: the setting, {changed}, where the list is, or
{"error": {"class", "reason"}}; never a stack trace, never a value of the request.

`set` is safe to repeat: it names the state it wants, and the only repeat this code makes (after a timeout or a
5xx, inside the invocation, eprom_client) sends the very same state again, which changes nothing more. A list is
read page by page into a multipart upload (eprom.results_store.StreamedObject): one page and one part in memory.
"""

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from eprom.aws_clients import AWS_CALL_MAX_SECONDS
from eprom.eprom_client import EpromClient, PvkFailed
from eprom.privacy import (
    ErrorReply,
    GetRequest,
    InstansEndret,
    ListReply,
    ListRequest,
    PrivacyReply,
    PrivacyRequest,
    SetReply,
    SetRequest,
    Unreadable,
    error_reply,
    parse_request,
)
from eprom.results_store import ResultsStore

logger = Logger(child=True)
metrics = Metrics()

# What a get or set keeps of the invocation's time after ePROM's answer: the reply only.
CALL_RESERVE_SECONDS = 1.0
# What a list keeps after its last page: the last part's upload and the completion (or the abort).
LIST_RESERVE_SECONDS = 2 * AWS_CALL_MAX_SECONDS


@dataclass(frozen=True)
class PrivacySettings:
    eprom: EpromClient
    results: ResultsStore
    call_seconds: float  # how long a get or set keeps trying
    allow_synthetic_national_ids: bool

    def handle(self, payload: object, *, ends_at: float, request_id: str) -> dict[str, Any]:
        """The reply to one invocation's request. `ends_at`: epoch seconds when the invocation ends."""
        try:
            request = parse_request(payload, allow_synthetic_national_ids=self.allow_synthetic_national_ids)
        except Unreadable as invalid:
            return self._replied(None, error_reply("InvalidRequest", str(invalid)))
        try:
            reply = self._answer(request, ends_at, request_id)
        except Exception as error:  # AWS failed (S3, DynamoDB, Secrets Manager), or a bug: the type only
            logger.error("privacy request failed", operation=request.operation, error_type=type(error).__name__)
            reason = f"the request failed in the integration ({type(error).__name__}); it may be sent again"
            reply = error_reply("Transient", reason)
        return self._replied(request, reply)

    def _answer(self, request: PrivacyRequest, ends_at: float, request_id: str) -> PrivacyReply:
        if isinstance(request, ListRequest):
            return self._list(request, ends_at, request_id)
        answer_by = min(ends_at - CALL_RESERVE_SECONDS, time.time() + self.call_seconds)
        if isinstance(request, SetRequest):
            changed = self.eprom.set_privacy_setting(request, answer_by=answer_by)
            if isinstance(changed, PvkFailed):
                return error_reply(changed.error_class, changed.reason)
            return SetReply(changed=changed.instans_endret is InstansEndret.Endret)
        assert isinstance(request, GetRequest)
        setting = self.eprom.get_privacy_setting(request, answer_by=answer_by)
        return error_reply(setting.error_class, setting.reason) if isinstance(setting, PvkFailed) else setting.setting

    def _list(self, request: ListRequest, ends_at: float, request_id: str) -> PrivacyReply:
        """Every page until ePROM's paging reference is 0, each written on as it comes; the object only once whole."""
        now = datetime.now(UTC)
        key = f"privacy/lists/{request.pvk_id}/{now:%Y%m%dT%H%M%SZ}-{request_id}.ndjson"
        answer_by = ends_at - LIST_RESERVE_SECONDS
        count, reference, asked = 0, 0, set()
        with self.results.streamed(key, "application/x-ndjson") as upload:
            while True:
                asked.add(reference)
                page = self.eprom.residents_page(request.pvk_id, reference, answer_by=answer_by)
                if isinstance(page, PvkFailed):
                    return error_reply(page.error_class, f"{page.reason} (after {count} residents in {len(asked) - 1} "
                                       "pages; nothing was stored)")  # fmt: skip
                try:
                    upload.write(b"".join(page.ndjson()))
                except Unreadable as problem:
                    return error_reply("Transient", f"ePROM answered a page we cannot read ({problem}); nothing was "
                                       "stored")  # fmt: skip
                count += len(page.residents)
                reference = page.paging_reference
                del page  # not held while the next one is read: one page in memory at a time
                if reference == 0:
                    break
                if reference in asked:
                    return error_reply("PvkUnavailable", "ePROM answered with a paging reference it had given before "
                                       "(the list would never end); nothing was stored")  # fmt: skip
            stored = upload.complete()
        metrics.add_metric(name="PrivacyListResidents", unit=MetricUnit.Count, value=count)
        return ListReply(
            bucket=self.results.bucket, key=stored.key, version_id=stored.version_id, sha256=stored.sha256, count=count
        )

    def _replied(self, request: PrivacyRequest | None, reply: PrivacyReply) -> dict[str, Any]:
        """The reply as JSON, logged and counted by what it is (never a national id: the request's pvkId only)."""
        operation = request.operation if request else None
        pvk_id = str(request.pvk_id) if request else None
        if isinstance(reply, ErrorReply):
            logger.warning("privacy request not carried out", operation=operation, pvk_id=pvk_id,
                           error_class=reply.error.error_class, reason=reply.error.reason)  # fmt: skip
            metrics.add_metric(name="PrivacyRequestsFailed", unit=MetricUnit.Count, value=1)
        else:
            logger.info("privacy request answered", operation=operation, pvk_id=pvk_id)
            metrics.add_metric(name="PrivacyRequestsAnswered", unit=MetricUnit.Count, value=1)
        return reply.as_json()
