"""Peak memory of SendMessageFunction for one letter with a large PDF (issue 28: 30 MB, ePROM's largest).

    PYTHONPATH=layers/shared:. .venv/bin/python -m bench.letter_memory [--bytes 31457280] [--code-root DIR]

This process runs moto and the ePROM simulator (which decodes the letter it receives); a fresh interpreter runs the
sender's handler (from --code-root, so another checkout's code can be measured the same way) on a letter with a
small PDF first, then on one with the large one, and reports its peak RSS after each: VmHWM of /proc/self/status
(proc(5)), as bench/document_memory.py does. The PDF is streamed from S3 into ePROM's request as base64: were it
held whole once, the peak would grow by its size, twice by twice that (and base64 is a third larger again).
"""

import argparse
import json
import os
import uuid
from pathlib import Path

import boto3

from bench.document_memory import peak_rss_runs, sqs_event

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "memory-api-key"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bytes", type=int, default=30 * 1024 * 1024)
    parser.add_argument("--code-root", type=Path, default=ROOT, help="a checkout whose layers/ and functions/ run")
    args = parser.parse_args()

    from local.eprom_simulator import EpromSimulator, SimulatorConfig, signed_pdf
    from local.stack import functions_environment, start_aws

    aws = start_aws(API_KEY)
    bucket = aws.resources["MESSAGE_DOCUMENTS_BUCKET"]
    letters = []
    for size in (20_000, args.bytes):
        key = f"documents/{uuid.uuid4()}.pdf"
        boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=signed_pdf(key, size))
        letters.append(sqs_event(json.dumps(letter(key))))
    with EpromSimulator(SimulatorConfig(api_key=API_KEY)) as eprom:
        child_env = os.environ | functions_environment(
            aws,
            eprom.base_url,
            {
                "POWERTOOLS_SERVICE_NAME": "memory",
                "POWERTOOLS_METRICS_NAMESPACE": "Memory",
                "POWERTOOLS_LOG_LEVEL": "WARNING",
                "EPROM_READ_TIMEOUT_SECONDS": "120",  # the simulator decodes 40 MB of base64 before it answers
            },
        )
        code = args.code_root.resolve()
        small, large = peak_rss_runs(code, "send_message", letters, child_env)
        received = [list(message.documents) for message in eprom.messages]
    print(json.dumps({
        "code": str(code), "document_bytes": args.bytes, "after_small_letter": small, "after_large_letter": large,
        "peak_rss_growth_mb": round(large["peak_rss_mb"] - small["peak_rss_mb"], 1),
        "eprom_received_document_sizes": received,
    }, indent=1))  # fmt: skip
    aws.stop()


def letter(key: str) -> dict[str, object]:
    return {
        "messageReference": f"memory-{uuid.uuid4()}",
        "kind": "letter",
        "nationalId": "26073941651",
        "senderInfo": {"organisationName": "Måling", "organisationNr": "987654321"},
        "messageInfo": {"title": "Måling av minnebruk"},
        "documents": [{"key": key, "title": "Brev", "main": True}],
        "notificationPriorityList": ["Helsenorge"],
    }


if __name__ == "__main__":
    main()
