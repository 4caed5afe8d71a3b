"""Hostile manifests through `mlplatform validate`: refused, named, bounded, and inert.

Each case must end in exit code 1 and a ``FILE[#DOC]: FIELD: MESSAGE`` line that names the
field (or ``(yaml)`` / ``(file)`` / ``(document)`` when the file cannot be read as objects),
never a traceback, within the CPU and memory limits of ``hostile.validate_bounded``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlplatform.models import documents
from tests.reliability import figures
from tests.security import hostile

# Known bugs in others' modules, pinned here until fixed (strict: a fix turns them into a
# failure that asks for the marker to go).
CASES = hostile.corpus_cases()
# What follows the file name on a report line: optional #DOC, optional :LINE (with :COL for
# a file that cannot be parsed), the field, the message.
_LINE = re.compile(
    r"(#[0-9]+)?(:[0-9]+(:[0-9]+)?)?: (?P<field>\([a-z]+\)|[A-Za-z][A-Za-z0-9_.\[\]]*): (?P<msg>.+)"
)
# A Python tag in the corpus would create this file if the loader ever executed it.
PWNED = Path("/tmp/mlpt-pwned")


def _own_lines(lines: list[str], path: Path) -> list[str]:
    prefix = str(path)
    return [line[len(prefix) :] for line in lines if line.startswith(prefix)]


def _check_report(lines: list[str], case: hostile.HostileCase) -> None:
    own = _own_lines(lines, case.path)
    assert own, f"{case}: no report line"
    for line in own:
        assert _LINE.fullmatch(line), f"{case}: not FILE[#DOC]: FIELD: MESSAGE: {line[:200]!r}"
    assert any(case.expect in line for line in own), (case.name, case.expect, own[:5])


@pytest.mark.parametrize("case", CASES, ids=str)
def test_each_hostile_file_is_refused_with_a_line_naming_the_field(
    case: hostile.HostileCase,
) -> None:
    docs = documents.read_documents(case.path)
    assert docs, f"{case}: nothing read"
    assert all(doc.model is None for doc in docs if doc.problems), case
    assert any(doc.problems for doc in docs), f"{case}: accepted"
    lines = [line for doc in docs for line in doc.report()]
    _check_report(lines, case)


def test_the_whole_hostile_corpus_is_refused_by_the_cli_within_memory_and_cpu_limits() -> None:
    PWNED.unlink(missing_ok=True)
    # Named one by one: a file found in a folder that cannot be read and never mentions the
    # MLModel API (garbage bytes, UTF-16) is someone else's and skipped; named, it is judged.
    verdict = hostile.validate_bounded(*(case.path for case in CASES))
    figures.add("hostile manifests tried (validate)", len(CASES))
    figures.peak("validate peak RSS over the hostile corpus (MiB)", verdict.max_rss_kib / 1024)
    assert "Traceback" not in verdict.stdout + verdict.stderr, verdict.stderr[-2000:]
    assert verdict.returncode == 1
    assert verdict.lines[-1].endswith("0 other documents skipped"), verdict.lines[-1]
    for case in CASES:
        _check_report(verdict.lines, case)
    assert not PWNED.exists(), "a YAML python tag was executed"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> list[hostile.HostileCase]:
    return hostile.generated_cases(tmp_path_factory.mktemp("hostile"))


@pytest.mark.parametrize("name", hostile.GENERATED, ids=str)
def test_a_huge_manifest_is_refused_in_bounded_time_and_memory(
    generated: list[hostile.HostileCase], name: str
) -> None:
    [case] = [case for case in generated if case.name == name]
    verdict = hostile.validate_bounded(case.path)
    figures.add("hostile manifests tried (validate)")
    figures.peak("validate slowest huge manifest (s)", verdict.seconds)
    figures.peak("validate peak RSS over huge manifests (MiB)", verdict.max_rss_kib / 1024)
    assert "Traceback" not in verdict.stdout + verdict.stderr, verdict.stderr[-2000:]
    assert verdict.returncode == 1
    _check_report(verdict.lines, case)
    # A line quotes a value only in part: a megabyte value is never echoed back whole.
    assert all(len(line) < 4096 for line in verdict.lines[:100])
    assert verdict.max_rss_kib < hostile.MEMORY_LIMIT_BYTES // 1024
