"""Each rendered template as CloudFormation receives it: transformed by the pinned SAM translator.

The linters read template.yaml before the transform, so a property SAM copies or rewrites wrongly (an intrinsic where
SAM expects a literal, say) passes them and fails only in CloudFormation. This runs the same translator `sam deploy`
runs (aws-sam-translator, pinned in requirements/sam.txt) on every rendered network mode, so the checks can read
what CloudFormation would be given.

Runs in the SAM CLI's own venv (it has the translator; the app's venv does not):

    .tools/sam/bin/python buildtools/transform.py OUT_DIR RENDERED.json...   # writes OUT_DIR/<name>.json
"""

import json
import logging
import sys
from pathlib import Path
from typing import Any

import boto3
from samtranslator.parser import parser
from samtranslator.translator.translator import Translator

REGION = "eu-north-1"
ACCOUNT_ID = "123456789012"

# Local paths become S3 locations, as `sam package` would make them; the translator accepts only those.
_CODE_PROPERTIES = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}


def transform(template: dict[str, Any]) -> dict[str, Any]:
    for logical_id, resource in template["Resources"].items():
        code_property = _CODE_PROPERTIES.get(resource["Type"])
        if code_property:
            resource["Properties"][code_property] = f"s3://sam-artifacts/{logical_id}.zip"
    translator = Translator(
        managed_policy_map=None,
        sam_parser=parser.Parser(),
        plugins=[],
        boto_session=boto3.session.Session(region_name=REGION),
    )
    transformed: dict[str, Any] = translator.translate(
        sam_template=template,
        parameter_values=parameter_values(template),
        get_managed_policy_map=dict,  # the translator knows AWS's managed policies itself; we name no others
    )
    return transformed


def parameter_values(template: dict[str, Any]) -> dict[str, Any]:
    """What CloudFormation hands the transform: every parameter's value (here the rendered mode's default), a list
    parameter as a list of its items, not the comma-joined text. The translator resolves some Refs itself (API
    Gateway's Auth, for one) with these values: given only the text, a list of CIDRs would become one invalid CIDR.
    CloudFormation passes list values as lists: https://github.com/aws/serverless-application-model/issues/1696"""
    values: dict[str, Any] = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT_ID, "AWS::Partition": "aws"}
    for name, parameter in template.get("Parameters", {}).items():
        if "Default" not in parameter:
            continue
        value = str(parameter["Default"])
        is_list = parameter["Type"] == "CommaDelimitedList" or parameter["Type"].startswith("List<")
        values[name] = value.split(",") if is_list else value
    return values


def main(out_dir: str, rendered: list[str]) -> None:
    logging.disable(logging.WARNING)  # the translator warns about its own feature toggles and metrics
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    for path in map(Path, rendered):
        out = directory / path.name
        out.write_text(json.dumps(transform(json.loads(path.read_text())), indent=1))
        print(out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
