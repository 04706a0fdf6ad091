"""A stand-in for an upstream system: it consumes OutcomeQueue as one would (EventBridge envelopes, at least once,
in any order), keeps every event it received, and de-duplicates on `eventId` as the contract tells consumers to."""

import json
import threading
from typing import Any

import boto3

from local.iam import as_upstream


class Upstream:
    def __init__(self, outcome_queue_url: str) -> None:
        self._queue_url = outcome_queue_url
        self._sqs = boto3.client("sqs")
        self.received: list[dict[str, Any]] = []  # every envelope, repeats included
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="upstream", daemon=True)

    def start(self) -> "Upstream":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._drain()

    def _run(self) -> None:
        while not self._stop.is_set():
            with as_upstream("OutcomeConsumerPolicy"):
                self._receive(wait_seconds=1)

    def _drain(self) -> None:
        with as_upstream("OutcomeConsumerPolicy"):
            while self._receive(wait_seconds=0):
                pass

    def _receive(self, wait_seconds: int) -> int:
        messages = self._sqs.receive_message(
            QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
        ).get("Messages", [])
        with self._lock:
            self.received += [json.loads(message["Body"]) for message in messages]
        for message in messages:
            self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def events(self) -> list[dict[str, Any]]:
        """What a consumer keeps: one event per eventId (with its detail-type)."""
        self._drain()
        with self._lock:
            unique = {envelope["detail"]["eventId"]: envelope for envelope in self.received}
        return [{"detailType": envelope["detail-type"], **envelope["detail"]} for envelope in unique.values()]
