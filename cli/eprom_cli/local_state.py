"""The file through which `make serve` tells `eprom --local` where its stack is: written by local/run.py when the
stack is ready (removed when it stops), read by the command. One model, so writer and reader cannot drift apart."""

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict

# The default place; EPROM_LOCAL_STATE (the command) and --state-file (make serve) name another.
LOCAL_STATE = Path(__file__).resolve().parent.parent.parent / ".local-run" / "stack.json"


class LocalTarget(BaseModel):
    """The local stack's resources, named as the command's Target names them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: str = "local"
    endpoint_url: str  # the moto server
    order_queue_url: str
    dead_letter_queue_url: str
    signed_document_queue_url: str
    signed_document_dead_letter_queue_url: str
    table: str
    bucket: str
    secret_id: str
    api_base_url: str  # the callback API's front
    outcome_bus_name: str
    eprom_simulator_url: str  # `eprom --local verify` asks it what ePROM received
    allow_synthetic_national_ids: bool = True  # a test stage
    allow_test_mode_orders: bool = True


class LocalState(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    region: str
    target: LocalTarget

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=1))

    @classmethod
    def read(cls, path: Path) -> "LocalState":
        return cls.model_validate_json(path.read_text())


def state_path() -> Path:
    """Where the command looks: EPROM_LOCAL_STATE (the tests' own stacks), else LOCAL_STATE."""
    return Path(os.environ.get("EPROM_LOCAL_STATE", LOCAL_STATE))
