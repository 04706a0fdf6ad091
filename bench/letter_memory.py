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
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "memory-api-key"

HANDLER_RUN = """
import json, sys, time
sys.path[:0] = sys.argv[2:]
from local.lambda_runtime import LambdaContext
from send_message.app import lambda_handler

def peak_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024

runs = []
for event in json.loads(sys.argv[1]):
    started = time.perf_counter()
    outcome = lambda_handler(event, LambdaContext("sender", timeout_seconds=600))
    runs.append({"peak_rss_mb": round(peak_mb(), 1), "seconds": round(time.perf_counter() - started, 2),
                 "failed": len(outcome["batchItemFailures"])})
print(json.dumps(runs))
"""


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
        paths = [str(code / "layers" / "shared"), str(code / "functions" / "send_message"), str(ROOT)]
        run = subprocess.run(  # noqa: S603 - our own interpreter and code
            [sys.executable, "-I", "-c", HANDLER_RUN, json.dumps(letters), *paths],
            env=child_env, capture_output=True, text=True, check=True, cwd="/",
        )  # fmt: skip
        received = [list(message.documents) for message in eprom.messages]
    small, large = json.loads(run.stdout.splitlines()[-1])
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


def sqs_event(body: str) -> dict[str, object]:
    record = json.loads((ROOT / "events" / "place-order-sqs.json").read_text())["Records"][0]
    record |= {"messageId": str(uuid.uuid4()), "body": body}
    record["attributes"] |= {"SentTimestamp": str(int(time.time() * 1000)), "ApproximateReceiveCount": "1"}
    return {"Records": [record]}


if __name__ == "__main__":
    main()
