"""The arm64 build check: native extensions must be aarch64 ELF files for CPython 3.13."""

import struct
from pathlib import Path

import pytest

from buildtools.check_native_extensions import main, problems


def elf(machine: int) -> bytes:
    """The first 20 bytes of a little-endian 64-bit ELF shared object for `machine`, and some padding."""
    return b"\x7fELF" + bytes([2, 1, 1]) + bytes(9) + struct.pack("<HH", 3, machine) + bytes(64)


@pytest.fixture
def build(tmp_path: Path) -> Path:
    layer = tmp_path / "SharedLayer" / "python" / "pydantic_core"
    layer.mkdir(parents=True)
    (layer / "_pydantic_core.cpython-313-aarch64-linux-gnu.so").write_bytes(elf(0xB7))
    (layer / "_speedups.abi3.so").write_bytes(elf(0xB7))
    return tmp_path


def test_an_aarch64_build_passes(build: Path) -> None:
    assert problems(build, "arm64") == []
    assert main(str(build), "arm64") == 0


def test_an_x86_64_wheel_in_the_arm64_build_fails(build: Path) -> None:
    wrong = build / "SharedLayer" / "python" / "wrapt" / "_wrappers.cpython-313-x86_64-linux-gnu.so"
    wrong.parent.mkdir()
    wrong.write_bytes(elf(0x3E))
    found = problems(build, "arm64")
    assert len(found) == 2 and all("wrapt/_wrappers" in problem for problem in found)  # machine and file tag
    assert main(str(build), "arm64") == 1


def test_an_extension_for_another_python_fails(build: Path) -> None:
    other = build / "SharedLayer" / "python" / "pydantic_core" / "_pydantic_core.cpython-312-aarch64-linux-gnu.so"
    other.write_bytes(elf(0xB7))
    assert any("cpython-312" in problem for problem in problems(build, "arm64"))


def test_a_build_without_native_extensions_is_suspicious(tmp_path: Path) -> None:
    assert main(str(tmp_path), "arm64") == 1  # pydantic-core alone is native: an empty result means a broken build
