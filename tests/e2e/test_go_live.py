"""docs/go-live.md as a test: its commands, in order, as written, against the local stack — `--local` in place of
`--stage test`, the simulator's values for the placeholders, and the `make` commands against a moto account of their
own (`make deploy` as its dry run). The runbook promises five commands: a sixth, a missing one or a failing one fails
this test."""

import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import serving

from local.stack import API_KEY, FORM_ID, ServerProcess, aws_environment

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "go-live.md"
PROMISED_COMMANDS = 5
# What a newcomer fills in, as the local stack has it (the simulator's forms and key)
PLACEHOLDERS = {
    "<your system's name>": "Norsk testregister",
    "<technical contact>": "Kari Nordmann",
    "<their e-mail>": "kari@example.org",
    "<their phone>": "+47 22 00 00 00",
    "<phone shown to patients>": "+47 23 00 00 00",
    "<formId>": FORM_ID,
    "<formId of the form that must be signed>": FORM_ID,
    "<national id of the person it is about>": "26073941651",
}


def runbook_commands() -> list[str]:
    """The commands of the numbered steps' shell blocks, continuation lines joined."""
    commands, step, fenced = [], None, False
    for line in RUNBOOK.read_text().splitlines():
        if re.match(r"^## \d+\. ", line):
            step = line
        elif line.startswith("## "):
            step = None
        elif line.startswith("```"):
            fenced = not fenced and step is not None and line.strip() == "```sh"
        elif fenced:
            if commands and commands[-1].endswith("\\"):
                commands[-1] = commands[-1][:-1] + " " + line.strip()
            elif line.strip():
                commands.append(line.strip())
    return commands


@pytest.fixture(scope="module")
def moto_account() -> Iterator[dict[str, str]]:
    """A fresh AWS account (a moto server of its own): no API Gateway logging role yet, no stack."""
    server = ServerProcess("local.ports")
    yield aws_environment(server.url)
    server.stop()


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with serving(tmp_path_factory.mktemp("serve") / "stack.json") as state:
        yield state


def run(command: str, tmp_path: Path, moto_account: dict[str, str]) -> subprocess.CompletedProcess[str]:
    for placeholder, value in PLACEHOLDERS.items():
        command = command.replace(placeholder, shlex.quote(value))
    words = shlex.split(command)
    stdin = None
    if "<" in words:  # `< key.txt`: the key Hemit sent (here the simulator's)
        position = words.index("<")
        (tmp_path / words[position + 1]).write_text(API_KEY + "\n")
        stdin = (tmp_path / words[position + 1]).read_text()
        del words[position : position + 2]
    environment = dict(os.environ)
    if words[0] == "make":
        words += ["DRY_RUN=1"] if "deploy" in words else []
        environment |= moto_account
    else:
        assert words[:3] == ["eprom", "--stage", "test"], f"not an eprom command of stage test: {command}"
        words = [str(ROOT / ".venv" / "bin" / "eprom"), "--local", *words[3:]]
        if words[2] == "verify":
            words += ["--report-dir", str(tmp_path / "verification")]
    return subprocess.run(words, cwd=ROOT, env=environment, input=stdin, capture_output=True, text=True, timeout=600)  # noqa: S603


def test_the_runbook_is_five_commands_that_work(local_stack: dict[str, Any], moto_account: dict[str, str],
                                                tmp_path: Path) -> None:  # fmt: skip
    commands = runbook_commands()
    assert [command.split()[:2] for command in commands] == [
        ["make", "account-setup"], ["make", "deploy"], ["eprom", "--stage"], ["eprom", "--stage"], ["eprom", "--stage"]
    ]  # fmt: skip
    assert len(commands) <= PROMISED_COMMANDS
    outputs = []
    for command in commands:
        done = run(command, tmp_path, moto_account)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout)
    setup, deploy, email, key, verify = outputs
    assert "API Gateway logging role: arn:aws:iam::123456789012:role/" in setup and "problem" not in setup
    assert "ok       API Gateway logging role: set for the account" in deploy
    assert "would deploy: .tools/sam/bin/sam deploy --config-env test --parameter-overrides Stage=test" in deploy
    assert email.startswith("To: eprom@hemit.no") and local_stack["target"]["api_base_url"] in email
    assert "the ApiKey is set" in key
    assert "verification passed" in verify
    [report] = (tmp_path / "verification").glob("verification-*.md")
    assert "- **outcome**: PASSED" in report.read_text()
