"""template.yaml rendered once per network mode, so `make template-checks` lints each mode's resources.

cfn-lint, `sam validate --lint` and checkov judge a template by its parameter defaults, which are the internet
mode: the VPC, endpoint and PRIVATE-callback resources would never be looked at. Each mode here is the same
template with that mode's parameters as defaults (written as JSON, which all three tools read).

    python -m buildtools.network_modes OUT_DIR    # writes OUT_DIR/<mode>.json and prints their paths
"""

import json
import sys
from pathlib import Path
from typing import Any

from local.aws_resources import load_template

_VPC = {
    "VpcId": "vpc-0a1b2c3d4e5f60718",
    "VpcSubnetIds": "subnet-0a1b2c3d4e5f60718,subnet-0f1e2d3c4b5a69788",
}
_PROD = {"Stage": "prod", "AllowSyntheticNationalIds": "false", "AllowTestModeOrders": "false"}

MODES: dict[str, dict[str, str]] = {
    # ePROM's test environment over the internet; callbacks on a public endpoint.
    "internet": {},
    # The functions that call ePROM in a VPC that routes AWS traffic through a NAT of its own.
    "vpc-nat": _VPC | {"VpcSecurityGroupIds": "sg-0a1b2c3d4e5f60718"},
    # The same VPC with the stack's endpoints, and a public callback endpoint restricted to ePROM's addresses.
    "vpc-endpoints-prod": _VPC
    | _PROD
    | {
        "CreateVpcEndpoints": "true",
        "VpcRouteTableIds": "rtb-0a1b2c3d4e5f60718,rtb-0f1e2d3c4b5a69788",
        # Several of each list: what CloudFormation and the SAM transform make of a list is checked on the output.
        "CallbackSourceIpAllowList": "203.0.113.0/24,198.51.100.0/24",
    },
    # Everything over Helsenettet: ePROM calls a PRIVATE API through an execute-api endpoint of the VPC.
    "helsenett-prod": _VPC
    | _PROD
    | {
        "CreateVpcEndpoints": "true",
        "VpcRouteTableIds": "rtb-0a1b2c3d4e5f60718",
        "CallbackEndpointType": "PRIVATE",
        "CallbackVpcEndpointIds": "vpce-0a1b2c3d4e5f60718,vpce-0f1e2d3c4b5a69788",
        # The VPC's own resolvers, and endpoints in one subnet per AZ of their own.
        "VpcDnsResolverCidr": "10.0.0.0/16",
        "VpcEndpointSubnetIds": "subnet-0f1e2d3c4b5a69788",
    },
}


def _as_json_template(value: Any) -> Any:
    """load_template keeps YAML's short forms; JSON needs GetAtt as a list and Condition without Fn::."""
    if isinstance(value, list):
        return [_as_json_template(item) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Fn::GetAtt"} and isinstance(value["Fn::GetAtt"], str):
        return {"Fn::GetAtt": value["Fn::GetAtt"].split(".", 1)}
    if set(value) == {"Fn::Condition"}:
        return {"Condition": value["Fn::Condition"]}
    return {key: _as_json_template(item) for key, item in value.items()}


def render(mode: str) -> dict[str, Any]:
    template: dict[str, Any] = _as_json_template(load_template())
    parameters = template["Parameters"]
    for name, value in MODES[mode].items():
        parameters[name]["Default"] = value
    # Every stage needs these; the defaults make the rendered template deployable as it stands.
    parameters["Stage"].setdefault("Default", "dev")
    parameters["EpromApiBaseUrl"].setdefault("Default", "https://proms.hemitdev.org/promswebapi")
    return template


def main(out_dir: str) -> None:
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    for mode in MODES:
        path = directory / f"{mode}.json"
        path.write_text(json.dumps(render(mode), indent=1))
        print(path)


if __name__ == "__main__":
    main(sys.argv[1])
