"""Rewrites readers-at-5b58290.json's outcomes for its bodies: what the pydantic models of 5b58290 (the last version
without the hand-written readers) made of each body — the refusal's reason, or the SHA-256 of the fingerprint's and
of ePROM's request's bytes — for
tests/unit/test_readers_match_models.py. Run with the layer of 5b58290 first on the path:

    git worktree add /tmp/at-5b58290 5b58290
    PYTHONPATH=/tmp/at-5b58290/layers/shared:tests/unit .venv/bin/python tests/unit/golden/make_readers_golden.py

The bodies are fixed (no random reference, no date that will pass; at most 2,000 characters: the longer ones are in
test_readers_match_models.py's own corpus): the file stays true as time goes on."""

import hashlib
import json
from pathlib import Path

from eprom.messages import EpromLetterRequest, Letter, describe_message_error, parse_message
from eprom.models import EpromOrderResponse, OrderMessage, describe_validation_error
from pydantic import ValidationError

GOLDEN = Path(__file__).parent / "readers-at-5b58290.json"
STAGES = [{"allow_synthetic_national_ids": False, "allow_test_mode_orders": False},
          {"allow_synthetic_national_ids": True, "allow_test_mode_orders": True}]  # fmt: skip
DOCUMENT_COLLECTION = {"mainDocument": {"title": "Brev"}, "attachments": []}
API_KEY = "KEY"


def order(body: str, stage: dict[str, bool]) -> list[str]:
    try:
        read = OrderMessage.model_validate_json(body, context=stage)
    except ValidationError as error:
        return ["refused", describe_validation_error(error)]
    request = read.to_eprom_request().model_dump_json(by_alias=True)
    return ["taken", sha256(read.model_dump_json(by_alias=True)), sha256(request)]


def message(body: str, stage: dict[str, bool]) -> list[str]:
    try:
        read = parse_message(body, stage)
    except ValidationError as error:
        return ["refused", describe_message_error(error)]
    if isinstance(read, Letter):
        request = json.dumps(EpromLetterRequest.of(read, DOCUMENT_COLLECTION).model_dump(mode="json", by_alias=True))
    else:
        request = read.eprom_request().with_key(API_KEY).decode()
    return ["taken", sha256(read.model_dump_json(by_alias=True)), sha256(request)]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def answer(body: str) -> list[str]:
    try:
        return ["taken", EpromOrderResponse.model_validate_json(body).model_dump_json(by_alias=True)]
    except ValidationError as error:
        return ["refused", describe_validation_error(error)]


def main() -> None:
    golden = json.loads(GOLDEN.read_text())  # its bodies; their outcomes written anew
    golden = {
        "orders": [{"body": case["body"], "stages": [order(case["body"], stage) for stage in STAGES]}
                   for case in golden["orders"]],
        "messages": [{"body": case["body"], "stages": [message(case["body"], stage) for stage in STAGES]}
                     for case in golden["messages"]],
        "answers": [{"body": case["body"], "outcome": answer(case["body"])} for case in golden["answers"]],
    }  # fmt: skip
    GOLDEN.write_text(json.dumps(golden, indent=1) + "\n")


if __name__ == "__main__":
    main()
