"""The wheels carried to the bare GPU machine (benchmarks/gpu-wheels.txt) meet each other's
requirements and the image's pinned versions (benchmarks/gpu-image.txt), read from the registry's
metadata without downloading a wheel (pip's dry run with --no-deps: a full resolve would fetch torch)."""

import json
import re
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
# The image: CPython 3.12 on x86_64 Linux (markers evaluated there; no extras asked for)
ENVIRONMENT = {
    "python_version": "3.12",
    "python_full_version": "3.12.3",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "extra": "",
}


def image() -> tuple[dict[str, Version], dict[str, str]]:
    """({name: pinned version}, {name: the unverified requirements the file records})."""
    pinned, unverified = {}, {}
    for line in (BENCH / "gpu-image.txt").read_text().splitlines():
        if m := re.match(r"#\s+unverified: (\S+)\s+\((.*)\)$", line):
            unverified[canonicalize_name(m[1])] = m[2]
        elif line and not line.startswith("#"):
            name, version = line.split("==")
            pinned[canonicalize_name(name)] = Version(version)
    return pinned, unverified


def carried_metadata(tmp_path) -> list[dict]:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--dry-run",
        "--no-deps",
        "--ignore-installed",
        "--quiet",
        "--report",
        str(tmp_path / "report.json"),
        "--only-binary=:all:",
        "--python-version",
        "3.12",
        *[x for p in PLATFORMS for x in ("--platform", p)],
        "--target",
        str(tmp_path / "t"),
        "-r",
        str(BENCH / "gpu-wheels.txt"),
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    return [item["metadata"] for item in json.loads((tmp_path / "report.json").read_text())["install"]]


def test_carried_wheels_meet_each_other_and_the_image(tmp_path):
    metadata = carried_metadata(tmp_path)
    carried = {canonicalize_name(m["name"]): Version(m["version"]) for m in metadata}
    pinned, recorded = image()
    assert not set(carried) & set(pinned), "a carried wheel replaces a package the image pins"
    unmet, unverified = [], {}
    for m in metadata:
        for text in m.get("requires_dist") or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate(ENVIRONMENT):
                continue
            name, who = canonicalize_name(req.name), canonicalize_name(m["name"])
            have = carried.get(name) or pinned.get(name)
            if have is not None:
                if not req.specifier.contains(have, prereleases=True):
                    unmet.append(f"{who} needs {req}, has {have}")
            else:
                unverified.setdefault(name, []).append(f"{who} {req.specifier or 'any'}")
    assert not unmet, unmet
    found = {name: "; ".join(sorted(whom)) for name, whom in unverified.items()}
    recorded = {name: "; ".join(sorted(x.strip() for x in text.split(";"))) for name, text in recorded.items()}
    assert found == recorded, f"update gpu-image.txt's unverified lines: {found}"
