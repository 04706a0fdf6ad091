"""Peak memory and time of PrivacySettingsFunction's `list` for a definition of 200,000 residents (issue 29).

    PYTHONPATH=. .venv/bin/python -m bench.privacy_list_memory [--residents 200000] [--page-size 1000] [--pace 2]

This process runs moto and the ePROM simulator (its pages as PVK gives them, ePROM's pace at the deployed default of
2 requests/s); a fresh interpreter runs the function's handler from --code-root with Lambda's 900 s, first on a
definition of 10 residents (imports, clients, the first upload), then on the large one, and reports its peak RSS
after each: VmHWM of /proc/self/status (as bench/document_memory.py, for the same reason). The object written is then
read back as a stream: its lines counted and its sha256 checked against the reply.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "memory-api-key"
SMALL, LARGE = "0f6b7c1e-1d2c-4b3a-9e8f-7a6b5c4d3e2f", "b3cda307-154c-4af4-87d3-30567c931924"

HANDLER_RUN = """
import json, sys, time
sys.path[:0] = sys.argv[2:]
from local.lambda_runtime import LambdaContext
from privacy_settings.app import lambda_handler

def peak_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024

runs = []
for request in json.loads(sys.argv[1]):
    started = time.perf_counter()
    context = LambdaContext("PrivacySettingsFunction", timeout_seconds=900)
    reply = lambda_handler(request, context)
    runs.append({"peak_rss_mb": round(peak_mb(), 1), "seconds": round(time.perf_counter() - started, 1),
                 "seconds_left_of_900": round(context.get_remaining_time_in_millis() / 1000), "reply": reply})
print(json.dumps(runs))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--residents", type=int, default=200_000)
    parser.add_argument("--page-size", type=int, default=1000, help="residents per page of ePROM's list")
    parser.add_argument("--pace", type=float, default=2, help="EPROM_REQUESTS_PER_SECOND (2 deployed)")
    parser.add_argument("--code-root", type=Path, default=ROOT, help="a checkout whose layers/ and functions/ run")
    args = parser.parse_args()

    from local.eprom_simulator import EpromSimulator, PvkDefinition, SimulatorConfig
    from local.stack import functions_environment, start_aws

    aws = start_aws(API_KEY)
    definitions = {
        SMALL: PvkDefinition("small", generated_residents=10),
        LARGE: PvkDefinition("Reservasjon mot registrering", generated_residents=args.residents),
    }
    config = SimulatorConfig(api_key=API_KEY, pvk_definitions=definitions, pvk_page_size=args.page_size)
    with EpromSimulator(config) as eprom:
        child_env = os.environ | functions_environment(
            aws,
            eprom.base_url,
            {
                "POWERTOOLS_SERVICE_NAME": "memory",
                "POWERTOOLS_METRICS_NAMESPACE": "Memory",
                "POWERTOOLS_LOG_LEVEL": "WARNING",
                "EPROM_REQUESTS_PER_SECOND": str(args.pace),
            },
        )
        code = args.code_root.resolve()
        paths = [str(code / "layers" / "shared"), str(code / "functions" / "privacy_settings"), str(ROOT)]
        requests = [{"operation": "list", "pvkId": pvk_id} for pvk_id in (SMALL, LARGE)]
        run = subprocess.run(  # noqa: S603 - our own interpreter and code
            [sys.executable, "-I", "-c", HANDLER_RUN, json.dumps(requests), *paths],
            env=child_env, capture_output=True, text=True, check=True, cwd="/",
        )  # fmt: skip
        pages = len(eprom.pvk_requests)
    small, large = json.loads(run.stdout.splitlines()[-1])
    reply = large["reply"]
    body = boto3.client("s3").get_object(Bucket=reply["bucket"], Key=reply["key"], VersionId=reply["versionId"])["Body"]
    digest, lines, size = hashlib.sha256(), 0, 0
    for chunk in body.iter_chunks(1024 * 1024):
        digest.update(chunk)
        lines += chunk.count(b"\n")
        size += len(chunk)
    print(json.dumps({
        "code": str(code), "residents": args.residents, "page_size": args.page_size, "pace_per_second": args.pace,
        "eprom_requests": pages, "after_small_list": {k: v for k, v in small.items() if k != "reply"},
        "after_large_list": {k: v for k, v in large.items() if k != "reply"}, "reply": reply,
        "object": {"bytes": size, "lines": lines, "sha256_matches": digest.hexdigest() == reply["sha256"]},
    }, indent=1))  # fmt: skip
    aws.stop()


if __name__ == "__main__":
    main()
