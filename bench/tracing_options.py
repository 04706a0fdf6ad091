"""What each tracing option adds to a cold start, on top of `import boto3, requests` + one DynamoDB client, in
fresh interpreters (as bench's cold imports). Not part of `make bench`: it needs packages the project does not
ship, installed to directories of their own (docs/performance.md, "Tracing"):

    uv pip install --target /tmp/xray --no-deps aws-xray-sdk==2.15.0 wrapt==2.5.2
    uv pip install --target /tmp/otel opentelemetry-sdk opentelemetry-exporter-otlp-proto-http \\
        opentelemetry-instrumentation-botocore opentelemetry-instrumentation-requests \\
        opentelemetry-sdk-extension-aws opentelemetry-propagator-aws-xray
    python -m compileall -q /tmp/xray /tmp/otel
    make build-host && python -m bench.tracing_options /tmp/xray /tmp/otel
"""

import json
import statistics
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHILD = """
import sys, time
sys.path[:0] = sys.argv[2:]
started = time.perf_counter()
import boto3, requests
boto3.client("dynamodb")
if sys.argv[1] == "xray":  # what Powertools' Tracer(patch_modules=("botocore", "requests")) did
    from aws_xray_sdk.core import patch, xray_recorder
    patch(["botocore", "requests"])
elif sys.argv[1] == "otel":  # the OpenTelemetry SDK exporting to X-Ray's OTLP endpoint, both clients instrumented
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor
    from opentelemetry.propagators.aws import AwsXRayPropagator
    from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    provider = TracerProvider(id_generator=AwsXRayIdGenerator())
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint="http://127.0.0.1:4318/v1/traces")))
    trace.set_tracer_provider(provider)
    BotocoreInstrumentor().instrument()
    RequestsInstrumentor().instrument()
print(time.perf_counter() - started)
"""


def main(xray: str, otel: str, runs: int = 11) -> None:
    below = [str(ROOT / ".aws-sam" / "check" / "SharedLayer" / "python")]  # the layer bundles the AWS SDK
    paths = {"active tracing only": below, "X-Ray SDK": [xray, *below], "OpenTelemetry SDK": [otel, *below]}
    names = {"active tracing only": "none", "X-Ray SDK": "xray", "OpenTelemetry SDK": "otel"}
    python = str(Path(sysconfig.get_config_var("BINDIR"), "python3"))
    env = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "eu-north-1", "AWS_LAMBDA_FUNCTION_NAME": "bench"}
    seconds: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(runs):  # interleaved, so load on the machine hits all alike
        for name, path in paths.items():
            out = subprocess.run(  # noqa: S603 - our own interpreter
                [python, "-B", "-I", "-S", "-c", CHILD, names[name], *path],
                env=env, capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            seconds[name].append(float(out.strip().splitlines()[-1]))
    medians = {name: statistics.median(values) * 1000 for name, values in seconds.items()}
    base = medians["active tracing only"]
    print(json.dumps({name: {"median_ms": round(ms, 1), "added_ms": round(ms - base, 1)}
                      for name, ms in medians.items()}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main(*sys.argv[1:3])
