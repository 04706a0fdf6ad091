"""Peak memory of FetchSignedDocumentFunction for one large signed PDF (issue 19, item 11).

    PYTHONPATH=. .venv/bin/python -m bench.document_memory --bytes 150000000 [--code-root DIR]

This process runs moto and the ePROM simulator; a fresh interpreter runs the fetcher's handler (from --code-root,
so another checkout's code can be measured the same way) on a small job first, then on the large one, and reports
its peak RSS after each: VmHWM of /proc/self/status (proc(5)). Not getrusage's ru_maxrss, which on Linux keeps the
peak of the process before its execve, i.e. of this forked one, holding the simulator's PDF and moto's copy.
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

# argv: the handler's module, the events (JSON), then the paths to import from
HANDLER_RUN = """
import importlib, json, sys, time
sys.path[:0] = sys.argv[3:]
from local.lambda_runtime import LambdaContext
lambda_handler = importlib.import_module(sys.argv[1]).lambda_handler

def peak_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024

runs = []
for event in json.loads(sys.argv[2]):
    started = time.perf_counter()
    outcome = lambda_handler(event, LambdaContext("memory", timeout_seconds=600))
    runs.append({"peak_rss_mb": round(peak_mb(), 1), "seconds": round(time.perf_counter() - started, 2),
                 "failed": len(outcome["batchItemFailures"])})
print(json.dumps(runs))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bytes", type=int, default=150_000_000)
    parser.add_argument("--code-root", type=Path, default=ROOT, help="a checkout whose layers/ and functions/ run")
    args = parser.parse_args()

    from eprom.models import EpromCallback
    from eprom.order_item import ResultPointer
    from eprom.order_store import OrderStore

    from local.eprom_simulator import EpromSimulator, SimulatorConfig, signed_pdf
    from local.stack import functions_environment, start_aws

    aws = start_aws(API_KEY)
    jobs = []
    with EpromSimulator(SimulatorConfig(api_key=API_KEY)) as eprom:
        for size in (20_000, args.bytes):
            form_order_id, signed_form_id = str(uuid.uuid4()), str(uuid.uuid4())
            eprom.documents[signed_form_id] = (0.0, signed_pdf(signed_form_id, size))
            body = json.dumps({"formOrderId": form_order_id, "signedFormId": signed_form_id})
            answers = ResultPointer(key=f"answers/{form_order_id}.json", sha256="0" * 64, bytes=2)
            OrderStore(aws.resources["FORM_ORDERS_TABLE"]).apply_callback(  # the fetcher fetches only for its order
                EpromCallback.model_validate(json.loads(body) | {"formOrderStatus": 0, "formData": "{}"}),
                answers=answers,
            )
            jobs.append(sqs_event(body))
        child_env = os.environ | functions_environment(
            aws,
            eprom.base_url,
            {
                "POWERTOOLS_SERVICE_NAME": "memory",
                "POWERTOOLS_METRICS_NAMESPACE": "Memory",
                "POWERTOOLS_LOG_LEVEL": "WARNING",
                "SIGNED_DOCUMENT_MAX_BYTES": str(max(args.bytes + 1, 50 * 1024 * 1024)),
            },
        )
        code = args.code_root.resolve()
        small, large = peak_rss_runs(code, "fetch_signed_document", jobs, child_env)
    bucket = aws.resources["FORM_RESULTS_BUCKET"]
    stored = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix="signed/")["Contents"]
    print(json.dumps({
        "code": str(code), "document_bytes": args.bytes, "after_small_job": small, "after_large_job": large,
        "peak_rss_growth_mb": round(large["peak_rss_mb"] - small["peak_rss_mb"], 1),
        "stored_sizes": sorted(item["Size"] for item in stored),
    }, indent=1))  # fmt: skip
    aws.stop()


def peak_rss_runs(code: Path, function: str, events: list[dict], env: dict[str, str]) -> list[dict]:
    """Each event through the function's handler (functions/<function>/, from the checkout at code) in one fresh
    interpreter, with its peak RSS after each."""
    paths = [str(code / "layers" / "shared"), str(code / "functions" / function), str(ROOT)]
    run = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-I", "-c", HANDLER_RUN, f"{function}.app", json.dumps(events), *paths],
        env=env, capture_output=True, text=True, check=True, cwd="/",
    )  # fmt: skip
    runs: list[dict] = json.loads(run.stdout.splitlines()[-1])
    return runs


def sqs_event(body: str) -> dict:
    record = json.loads((ROOT / "events" / "place-order-sqs.json").read_text())["Records"][0]
    record |= {"messageId": str(uuid.uuid4()), "body": body}
    record["attributes"] |= {"SentTimestamp": str(int(time.time() * 1000)), "ApproximateReceiveCount": "1"}
    return {"Records": [record]}


if __name__ == "__main__":
    main()
