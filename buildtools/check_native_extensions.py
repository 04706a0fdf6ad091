"""The deployed build is arm64 and cannot be imported on an x86_64 machine, so prove what can be proven without
running it: every native extension in it is an aarch64 ELF file built for the runtime's CPython (3.13).
A wheel for the wrong machine or Python would otherwise fail only at the first cold start on Lambda.

Usage: python -m buildtools.check_native_extensions .aws-sam/build arm64
"""

import struct
import sys
from pathlib import Path

ELF_MACHINES = {"arm64": 0xB7, "x86_64": 0x3E}  # e_machine: EM_AARCH64, EM_X86_64
PLATFORM_TAGS = {"arm64": "aarch64", "x86_64": "x86_64"}
PYTHON_TAG = "cpython-313"


def native_extensions(build_dir: Path) -> list[Path]:
    return [path for path in build_dir.rglob("*.so*") if path.is_file()]  # foo.so, and libfoo.so.1


def problems(build_dir: Path, architecture: str) -> list[str]:
    found = []
    for path in native_extensions(build_dir):
        header = path.read_bytes()[:20]
        relative = path.relative_to(build_dir)
        if len(header) < 20 or header[:4] != b"\x7fELF":
            found.append(f"{relative}: not an ELF file")
            continue
        little_endian = header[5] == 1
        (machine,) = struct.unpack("<H" if little_endian else ">H", header[18:20])
        if machine != ELF_MACHINES[architecture]:
            found.append(f"{relative}: ELF machine {machine:#x}, not {architecture}")
        tags = path.name.split(".")[1:-1]  # e.g. cpython-313-aarch64-linux-gnu, abi3, or nothing
        if tags and tags[0] != "abi3" and not (PYTHON_TAG in tags[0] and PLATFORM_TAGS[architecture] in tags[0]):
            found.append(f"{relative}: built for {tags[0]}, not {PYTHON_TAG} on {PLATFORM_TAGS[architecture]}")
    return found


def main(build_dir: str, architecture: str) -> int:
    found = problems(Path(build_dir), architecture)
    for problem in found:
        print(f"FAILED: {problem}")
    count = len(native_extensions(Path(build_dir)))
    print(f"check-native-extensions: {count} native extensions checked for {architecture}, {len(found)} problems")
    return 1 if found or count == 0 else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
