"""demo/build-image.sh takes its Debian mirror from the machine's own apt sources."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "demo" / "build-image.sh"

DEB822 = """\
Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://source.example/debian
Suites: bookworm

Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
"""


def _mirror(apt_root: Path) -> str:
    functions = subprocess.run(
        ["sed", "-n", "/^system_mirror()/,/^mirror=/p", str(SCRIPT)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    body = "\n".join(line for line in functions.splitlines() if not line.startswith("mirror="))
    result = subprocess.run(
        ["bash", "-c", f"{body}\nsystem_mirror"],
        capture_output=True,
        text=True,
        env={"APT_ROOT": str(apt_root), "PATH": "/usr/bin:/bin"},
        timeout=30,
        check=True,
    )
    return result.stdout.strip()


@pytest.fixture
def apt(tmp_path: Path) -> Path:
    (tmp_path / "etc" / "apt" / "sources.list.d").mkdir(parents=True)
    return tmp_path


def test_the_deb822_main_archive_is_used(apt: Path) -> None:
    (apt / "etc/apt/sources.list.d/debian.sources").write_text(DEB822)
    assert _mirror(apt) == "http://mirror.example/debian"


def test_the_one_line_format_with_options_is_used(apt: Path) -> None:
    (apt / "etc/apt/sources.list").write_text(
        "# a comment\ndeb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://local.example/debian bookworm main\n"
    )
    assert _mirror(apt) == "http://local.example/debian"


def test_nothing_configured_gives_nothing(apt: Path) -> None:
    assert _mirror(apt) == ""
