"""The ``mlplatform`` command: validate, crd, operator, local (DESIGN.md §2b).

Each sub-command's work lives in its adapter; this module only parses arguments, so that
``mlplatform validate`` starts fast and needs neither kopf nor a Docker engine.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mlplatform import __version__
from mlplatform.kube import options as kube_options
from mlplatform.local import options as local_options
from mlplatform.models import documents


def validate(paths: Sequence[Path]) -> int:
    """Check manifests offline; print ``FILE[#DOC]: FIELD: MESSAGE`` per problem."""
    failed = False
    checked = 0
    for path in documents.manifest_files(paths):
        if not path.exists():
            print(f"{path}: (file): does not exist", file=sys.stderr)
            failed = True
            continue
        for document in documents.read_documents(path):
            if document.model is None and not document.problems:
                continue  # another kind (a Service, a Deployment...): not ours to judge
            checked += 1
            for line in document.report():
                print(line)
                failed = True
    if checked == 0 and not failed:
        print("no MLModel manifests found in " + " ".join(map(str, paths)), file=sys.stderr)
        return 1
    if not failed:
        print(f"{checked} MLModel manifest(s) valid", file=sys.stderr)
    return 1 if failed else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlplatform", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--version", action="version", version=f"mlplatform {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser(
        "validate", help="check MLModel manifests offline (files or folders)"
    )
    check.add_argument("paths", nargs="+", type=Path, metavar="PATH")

    commands.add_parser("crd", help="print the MLModel CustomResourceDefinition")

    operator = commands.add_parser("operator", help="run the operator against a Kubernetes cluster")
    kube_options.add_arguments(operator)

    local = commands.add_parser(
        "local", help="run MLModel manifests on this Docker engine, no cluster"
    )
    local_options.add_arguments(local)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "validate":
        return validate(args.paths)
    if args.command == "crd":
        from mlplatform.kube import crd

        sys.stdout.write(crd.render())
        return 0
    if args.command == "operator":
        from mlplatform.kube import main as kube_main

        return int(kube_main.run(args))
    from mlplatform.local import main as local_main

    return int(local_main.run(args))
