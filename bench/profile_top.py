"""Read py-spy's collapsed stacks (``--format raw``) and print where the samples went.

    python -m bench.profile_top bench/results/latest/profiles/local-idle-200.txt [--top 25]

Prints the functions with the most samples *inclusive* (on the stack) and *self* (on top of
the stack), with their share of all samples — enough to see where a process spends its CPU.
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _name(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    file = match["file"]
    for marker in ("site-packages/", "mlplatform/", "python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{match['func']} ({file})"


def top(path: Path, count: int) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        number = int(samples)
        total += number
        frames = [_name(f) for f in stack.split(";") if not f.startswith("process ")]
        frames = [f for f in frames if not f.startswith("thread ")]
        for frame in set(frames):
            inclusive[frame] += number
        if frames:
            own[frames[-1]] += number
    lines = [f"{path.name}: {total} samples"]
    for title, counter in (("inclusive", inclusive), ("self", own)):
        lines.append(f"-- {title}")
        for frame, number in counter.most_common(count):
            lines.append(f"{100 * number / max(total, 1):5.1f}%  {frame}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    for path in args.paths:
        print(top(path, args.top))


if __name__ == "__main__":
    main()
