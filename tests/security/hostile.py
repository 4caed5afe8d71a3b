"""The hostile corpus: manifests written to break out, blow up or confuse the loader.

Two kinds of case, each with the fragment of a ``FILE[#DOC]: FIELD: MESSAGE`` line it must
produce:

- files in ``tests/corpus/hostile/`` (small; some are not even UTF-8), whose first line is
  ``# expect: FRAGMENT``;
- generated cases (``generated_cases``), too big to keep in the repository: megabyte
  strings, wide lists, many documents, a file over the size limit.

Every layer gets the same cases: ``mlplatform validate`` (a subprocess under CPU and memory
limits), the admission webhook and local mode.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOSTILE_DIR = ROOT / "tests" / "corpus" / "hostile"
MLPLATFORM = Path(sys.executable).parent / "mlplatform"
_EXPECT = b"# expect: "

# Limits for one `mlplatform validate` run over hostile input: the interpreter with pydantic
# needs ~35 MB, so 512 MiB of address space is plenty for an honest parse and far too little
# for an alias bomb; CPU seconds stop a parser that loops.
MEMORY_LIMIT_BYTES = 512 * 1024 * 1024
CPU_LIMIT_SECONDS = 60
WALL_TIMEOUT_SECONDS = 120

HEADER = "apiVersion: mlplatform.dev/v1alpha1\nkind: MLModel\nmetadata: {name: hostile}\n"


@dataclass(frozen=True)
class HostileCase:
    """One hostile file and the fragment its report line must contain."""

    path: Path
    expect: str

    @property
    def name(self) -> str:
        return self.path.name

    def __str__(self) -> str:
        return self.name


def corpus_cases() -> list[HostileCase]:
    """Every file of ``tests/corpus/hostile/``, sorted; a file without its header is a bug."""
    cases = []
    for path in sorted(p for p in HOSTILE_DIR.iterdir() if p.is_file()):
        first = path.read_bytes().split(b"\n", 1)[0]
        if not first.startswith(_EXPECT):
            raise ValueError(f"{path}: the first line must be '# expect: FRAGMENT'")
        cases.append(HostileCase(path, first[len(_EXPECT) :].decode("utf-8").strip()))
    return cases


def _spec(container: str, model_id: str = '"iris:1"') -> str:
    return HEADER + f"spec: {{id: {model_id}, container: {{{container}}}}}\n"


# name → (content builder, expected fragment). Each stays under the 1 MiB file limit unless
# it is the case about the limit.
GENERATED: dict[str, tuple[Callable[[], str], str]] = {
    "huge-id-1mb.yaml": (
        lambda: _spec("image: busybox, ports: [80]", model_id='"' + "a" * 1_000_000 + ':1"'),
        "spec.id: is 1000002 characters long",
    ),
    "huge-image-1mb.yaml": (
        lambda: _spec('image: "' + "a" * 1_000_000 + '", ports: [80]'),
        "spec.container.image: ",
    ),
    "huge-env-value-1mb.yaml": (
        lambda: _spec(
            'image: busybox, ports: [80], env: [{name: A, value: "' + "v" * 1_000_000 + '"}]'
        ),
        "spec.container.env[0].value: must be at most 32768 characters long",
    ),
    "huge-volume-1mb.yaml": (
        lambda: _spec('image: busybox, ports: [80], volumes: ["/' + "a" * 1_000_000 + '"]'),
        "spec.container.volumes[0]: ",
    ),
    "over-the-size-limit-2mb.yaml": (
        lambda: _spec('image: "' + "a" * 2_000_000 + '", ports: [80]'),
        "(yaml): larger than 1024 KiB",
    ),
    "million-ports-over-the-limit.yaml": (
        lambda: _spec("image: busybox, ports: [" + ",".join(["1"] * 1_000_000) + "]"),
        "(yaml): larger than 1024 KiB",
    ),
    "wide-ports-100k.yaml": (
        lambda: _spec("image: busybox, ports: [" + ",".join(["8"] * 100_000) + "]"),
        "(yaml): line 4: more than 20000 YAML nodes",
    ),
    "wide-unknown-keys-20k.yaml": (
        lambda: _spec(
            "image: busybox, ports: [80], " + ", ".join(f"k{i}: 1" for i in range(20_000))
        ),
        "(yaml): line 4: more than 20000 YAML nodes",
    ),
    # Each document claims to be an MLModel (no apiVersion, our kind), so each is judged.
    "many-documents-6k.yaml": (
        lambda: "".join("--- {kind: MLModel}\n" for _ in range(6_000)),
        "#6000: metadata: must be an object, got nothing",
    ),
}


def generated_cases(folder: Path) -> list[HostileCase]:
    """Write the generated cases into ``folder`` and return them."""
    cases = []
    for name, (build, expect) in GENERATED.items():
        path = folder / name
        path.write_text(build(), encoding="utf-8")
        cases.append(HostileCase(path, expect))
    return cases


@dataclass(frozen=True)
class Verdict:
    """What one bounded ``mlplatform validate`` run said, and what it cost."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    max_rss_kib: int

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()


# Sets the limits, then becomes `mlplatform validate` (exec keeps the limits and the pid).
_LIMITED = (
    "import os, resource, sys\n"
    f"resource.setrlimit(resource.RLIMIT_AS, ({MEMORY_LIMIT_BYTES}, {MEMORY_LIMIT_BYTES}))\n"
    f"resource.setrlimit(resource.RLIMIT_CPU, ({CPU_LIMIT_SECONDS}, {CPU_LIMIT_SECONDS}))\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)


def validate_bounded(*paths: Path) -> Verdict:
    """``mlplatform validate PATH...`` under the memory and CPU limits above."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-c", _LIMITED, str(MLPLATFORM), "validate", *map(str, paths)],
            stdout=out,
            stderr=err,
            cwd=ROOT,
        )
        killer = threading.Timer(WALL_TIMEOUT_SECONDS, process.kill)
        killer.start()
        try:
            # wait4, not wait: the peak RSS of this very child.
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            killer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        return Verdict(
            returncode=process.returncode,
            stdout=out.read().decode("utf-8", errors="replace"),
            stderr=err.read().decode("utf-8", errors="replace"),
            seconds=seconds,
            max_rss_kib=usage.ru_maxrss,
        )
