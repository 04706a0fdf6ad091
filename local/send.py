"""Send order messages (JSON files) to the local stack's OrderQueue: see `make serve`."""

import argparse
import sys
from pathlib import Path

import boto3


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True, help="the moto server's URL (AWS_ENDPOINT_URL)")
    parser.add_argument("--queue", required=True, help="OrderQueue's URL")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    sqs = boto3.client(
        "sqs",
        endpoint_url=args.endpoint,
        region_name="eu-north-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's
    )
    for path in args.files:
        message_id = sqs.send_message(QueueUrl=args.queue, MessageBody=path.read_text())["MessageId"]
        print(f"sent {path} as message {message_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
