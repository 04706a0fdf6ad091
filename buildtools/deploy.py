"""`make deploy STAGE=… [PARAMS="Key=Value …"] [DRY_RUN=1]`: the preflight, the build with the stage's parameters,
`sam deploy` of the stage, then its outputs.

The stage's parameters come from samconfig.toml; PARAMS are merged into them by name. (sam's own
--parameter-overrides replaces the whole list, so one extra value on the command line would silently drop every
other parameter of the stage — AllowSyntheticNationalIds among them.) The build gets the same merged parameters, so
the layer is built for the `Architecture` the functions run on.

    python -m buildtools.deploy STAGE --sam .tools/sam/bin/sam [--params "K=V …"] [--dry-run]
"""

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

from eprom_cli.preflight import (
    Stage,
    StageError,
    load_stage,
    parse_parameters,
    preflight,
    session_for,
    template_parameters,
)
from eprom_cli.rendering import print_preflight

from buildtools.check_native_extensions import problems as architecture_problems

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = ROOT / ".aws-sam" / "build"


def build_command(stage: Stage) -> list[str]:
    """The Makefile's build (sam build, then the bytecode) with every parameter of the stage."""
    overrides = " ".join(shlex.quote(parameter) for parameter in stage.parameter_overrides())
    return ["make", "--no-print-directory", "build", f"PARAMETER_OVERRIDES={overrides}"]


def sam_deploy_command(sam: str, stage: Stage) -> list[str]:
    return [sam, "deploy", "--config-env", stage.name, "--parameter-overrides", *stage.parameter_overrides()]


def architecture(stage: Stage) -> str:
    """The stage's Architecture, else the template's default (the first of its allowed values)."""
    return stage.parameters.get("Architecture") or template_parameters()["Architecture"][0]


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
    parser.add_argument("--dry-run", action="store_true", help="the preflight, then the commands it would run")
    args = parser.parse_args()
    try:
        stage = load_stage(args.stage, parse_parameters(args.params))
    except StageError as error:
        sys.exit(f"error: {error}")
    print(f"preflight of stage {stage.name} (stack {stage.stack_name} in {stage.region}):")
    report = preflight(stage, session_for())
    print_preflight(report)
    build, deploy = build_command(stage), sam_deploy_command(args.sam, stage)
    if args.dry_run:
        print(f"would build for {architecture(stage)}: {shlex.join(build)}")
        print(f"would deploy: {shlex.join(deploy)}")
        sys.exit("error: fix the problems above first (a dry run: nothing was built or deployed)" if report.problems
                 else 0)  # fmt: skip
    if report.problems:
        sys.exit("error: fix the problems above first (nothing was built or deployed)")
    subprocess.run(build, cwd=ROOT, check=True)  # noqa: S603 - the project's own build
    if found := architecture_problems(BUILD_DIR, architecture(stage)):
        sys.exit("error: the build does not match Architecture (nothing was deployed):\n  " + "\n  ".join(found))
    subprocess.run(deploy, cwd=ROOT, check=True)  # noqa: S603 - our own SAM CLI with the stage's parameters
    print_outputs(stage)


if __name__ == "__main__":
    main()
