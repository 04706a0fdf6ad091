"""`make deploy STAGE=… [PARAMS="Key=Value …"]`: preflight, `sam deploy` of the stage, then its outputs.

The stage's parameters come from samconfig.toml; PARAMS are merged into them by name. (sam's own
--parameter-overrides replaces the whole list, so one extra value on the command line would silently drop every
other parameter of the stage — AllowSyntheticNationalIds among them.)

    python -m buildtools.deploy STAGE --sam .tools/sam/bin/sam [--params "K=V …"] [--dry-run]
"""

import argparse
import subprocess
import sys

from eprom_cli.preflight import Stage, StageError, load_stage, parse_parameters, preflight, session_for
from eprom_cli.rendering import print_preflight


def sam_deploy_command(sam: str, stage: Stage) -> list[str]:
    return [sam, "deploy", "--config-env", stage.name, "--parameter-overrides", *stage.parameter_overrides()]


def print_outputs(stage: Stage) -> None:
    stacks = (
        session_for().client("cloudformation", region_name=stage.region).describe_stacks(StackName=stage.stack_name)
    )
    for output in sorted(stacks["Stacks"][0].get("Outputs", []), key=lambda output: output["OutputKey"]):
        print(f"{output['OutputKey']:<36} {output['OutputValue']}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="make deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("stage")
    parser.add_argument("--sam", default="sam", help="the SAM CLI to run")
    parser.add_argument("--params", default="", help='"Key=Value …" merged into the stage\'s parameters')
    parser.add_argument("--dry-run", action="store_true", help="print the merged parameters and the command only")
    args = parser.parse_args()
    try:
        stage = load_stage(args.stage, parse_parameters(args.params))
    except StageError as error:
        sys.exit(f"error: {error}")
    command = sam_deploy_command(args.sam, stage)
    if args.dry_run:
        print(" ".join(command))
        return
    report = preflight(stage, session_for())
    print_preflight(report)
    if report.problems:
        sys.exit("error: fix the problems above first (nothing was deployed)")
    subprocess.run(command, check=True)  # noqa: S603 - our own SAM CLI with the stage's parameters
    print_outputs(stage)


if __name__ == "__main__":
    main()
