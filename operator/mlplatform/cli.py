"""The ``mlplatform`` command: validate, crd, operator, local, help, version.

Each sub-command's work lives in its adapter; this module only parses arguments, so that
``mlplatform validate`` starts fast and needs neither kopf nor a Docker engine.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import NoReturn

from mlplatform import __version__, config, errors
from mlplatform.kube import options as kube_options
from mlplatform.local import logs as logs_options
from mlplatform.local import options as local_options
from mlplatform.models import documents
from mlplatform.models.resource import Problem, ValidMLModel
from mlplatform.models.spec import KIND, container_name, id_scope

STDIN = Path("-")


@dataclass
class _Tally:
    """What ``validate`` saw: models, problems, other documents, names and container names."""

    models: int = 0
    invalid: int = 0
    others: int = 0
    keys: dict[str, str] = field(default_factory=dict)  # namespace/name -> where
    containers: dict[str, tuple[str, str, str]] = field(default_factory=dict)


def validate(paths: Sequence[Path], *, require_models: bool = False) -> int:
    """Check manifests offline; print ``FILE[#DOC][:LINE]: FIELD: MESSAGE`` per problem.

    Exit 0 when every MLModel is valid, 1 when one is not (or a path is missing).
    """
    tally = _Tally()
    failed = False
    named = set(paths)
    for path in documents.manifest_files(paths):
        if path == STDIN:
            docs = documents.read_text(sys.stdin.buffer.read(), "<stdin>")
        elif not path.exists():
            print(f"{path}: (file): does not exist", file=sys.stderr)
            failed = True
            continue
        else:
            docs = documents.read_documents(path, named=path in named)
        for document in docs:
            failed |= _judge(document, tally)
    print(
        f"{tally.invalid} of {tally.models} MLModel manifests invalid; "
        f"{tally.others} other documents skipped"
    )
    if tally.models == 0 and not failed:
        where = " ".join(map(str, paths))
        if require_models:
            print(f"no MLModel manifests found in {where}", file=sys.stderr)
            return 1
        print(f"note: no MLModel manifests found in {where}", file=sys.stderr)
    return 1 if failed else 0


def _judge(document: documents.Document, tally: _Tally) -> bool:
    """Count one document and print its problems; whether it is invalid."""
    if document.kind != KIND and not document.problems:
        tally.others += 1
        return False
    tally.models += 1
    lines = document.report()
    model = document.model
    if model is not None and not lines:
        lines = _collisions(document, model, tally)
    for line in lines:
        print(line)
    tally.invalid += bool(lines)
    return bool(lines)


def _collisions(document: documents.Document, model: ValidMLModel, tally: _Tally) -> list[str]:
    """Two models with one namespace/name, or whose ids collide in their scope (``id_scope``:
    one container name for docker, one namespace for kubernetes), are refused."""
    key = f"{model.namespace or 'default'}/{model.name}"
    model_id = model.spec.id
    first = tally.keys.get(key)
    if first is not None:
        return [
            f"{_at(document, 'metadata.name')}: metadata.name: MLModel {key} is already "
            f"defined in {first}"
        ]
    container = container_name(model.spec.id)
    scope = id_scope(model_id, model.spec.runner, model.namespace)
    clash = tally.containers.get(scope)
    if clash is not None:
        other_key, other_id, other_where = clash
        if other_id == model_id:
            message = f'"{model_id}" is already used by MLModel {other_key} in {other_where}'
        else:
            message = (
                f'"{model_id}" maps to container name "{container}", already used by '
                f"MLModel {other_key} ({other_id}) in {other_where}"
            )
        return [f"{_at(document, 'spec.id')}: spec.id: {message}"]
    tally.keys[key] = document.where
    tally.containers[scope] = (key, model_id, document.where)
    return []


def _at(document: documents.Document, field_name: str) -> str:
    line = document.line_of(Problem(field_name, ""))
    return f"{document.where}:{line}" if line is not None else document.where


EXIT_CODES = """\
exit codes:
  0    success
  1    invalid manifests; local --once: a model did not converge; an engine or API error
  2    usage or configuration error (bad option, bad environment variable, no kubeconfig)
  130  interrupted (SIGINT, Ctrl-C)
  141  the reader of the output went away (SIGPIPE, e.g. | head)
  143  terminated (SIGTERM)"""

_OPERATOR_ENV = (
    "KUBECONFIG                       kubeconfig file (unset: in-cluster, then ~/.kube/config)"
)


def _wrapped(text: str) -> str:
    return textwrap.fill(text, width=88)


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Epilogs kept as written; each option's default shown when it has one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "%(default)" not in text
            and action.default not in (None, False, [], argparse.SUPPRESS)
            and action.option_strings
        ):
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    """A usage error is one line on stderr and exit code 2, with where to read more."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mlplatform",
        description=_wrapped(
            "Run machine-learning model servers from MLModel manifests: on a "
            "Kubernetes cluster (operator) or on this Docker engine (local)."
        ),
        formatter_class=_HelpFormatter,
        epilog=EXIT_CODES,
    )
    parser.add_argument("--version", action="version", version=f"mlplatform {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser(
        "validate",
        help="check MLModel manifests offline (files, folders, or - for stdin)",
        description=_wrapped(
            "Check MLModel manifests offline, as the API server and the admission "
            "webhook would. Documents of other API groups are counted and skipped; hidden files "
            "and folders, and Helm charts' templates/, are skipped unless named; List items are "
            "checked one by one. Prints "
            "FILE[#DOC][:LINE]: FIELD: MESSAGE per problem and a summary line. Reads no "
            "environment variables."
        ),
        formatter_class=_HelpFormatter,
        epilog=EXIT_CODES,
    )
    check.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="manifest file, folder (read recursively) or - for standard input",
    )
    check.add_argument(
        "--require-models",
        action="store_true",
        help="fail (exit 1) when the input holds no MLModel at all",
    )

    commands.add_parser(
        "crd",
        help="print the MLModel CustomResourceDefinition",
        description=_wrapped(
            "Print the MLModel CustomResourceDefinition (YAML) generated from the "
            "spec and status models."
        ),
    )

    operator = commands.add_parser(
        "operator",
        help="run the operator against a Kubernetes cluster",
        description=_wrapped("Run the operator against the cluster of the usual kubeconfig."),
        formatter_class=_HelpFormatter,
        epilog=f"{kube_options.environment_help()}\n  {_OPERATOR_ENV}\n\n{EXIT_CODES}",
    )
    kube_options.add_arguments(operator)

    local = commands.add_parser(
        "local",
        help="run MLModel manifests on this Docker engine, no cluster",
        description=_wrapped(
            "Run MLModel manifests on this Docker engine, no cluster: converge "
            "(--once), watch (default) or remove (--down)."
        ),
        formatter_class=_HelpFormatter,
        epilog=f"{local_options.environment_help()}\n\n{EXIT_CODES}",
    )
    local_options.add_arguments(local)

    logs = commands.add_parser(
        "logs",
        help="print a local model's output (like kubectl logs)",
        description=_wrapped(
            "Print the output of a model run by mlplatform local on this Docker engine, "
            "from any terminal (a watcher may hold its folder)."
        ),
        formatter_class=_HelpFormatter,
        epilog=f"{local_options.environment_help()}\n\n{EXIT_CODES}",
    )
    logs_options.add_arguments(logs)

    helper = commands.add_parser(
        "help", help="show the help of mlplatform or of one command", description="Show help."
    )
    helper.add_argument("topic", nargs="?", metavar="COMMAND", help="command to explain")
    commands.add_parser("version", help="print the version", description="Print the version.")
    return parser


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread like KeyboardInterrupt for SIGINT."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "help":
        if args.topic is None:
            parser.print_help()
            return 0
        return main([args.topic, "--help"])
    if args.command == "version":
        print(f"mlplatform {__version__}")
        return 0
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _run(args)
    except BrokenPipeError:
        # The reader went away (`mlplatform validate . | head`): stop quietly, as cat does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print(f"mlplatform {args.command}: interrupted", file=sys.stderr)
        return 130
    except _Terminated:
        print(f"mlplatform {args.command}: terminated", file=sys.stderr)
        return 143
    except config.InvalidSettings as error:
        print(
            f"mlplatform {args.command}: {error} (see mlplatform {args.command} --help)",
            file=sys.stderr,
        )
        return 2
    except errors.ConfigurationError as error:
        print(f"mlplatform {args.command}: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        known = _known_error(error)
        if known is None:
            raise
        print(f"mlplatform {args.command}: {known}", file=sys.stderr)
        return 2


def _known_error(error: Exception) -> str | None:
    """One line for an error a user can fix (no credentials, a bad address), else None."""
    name = type(error).__name__
    if name == "ConfigException" or "kubeconfig" in str(error).lower():
        return (
            f"no Kubernetes credentials: {' '.join(str(error).split())[:200]} "
            "(set KUBECONFIG, or run in a cluster with a service account)"
        )
    return None


def _run(args: argparse.Namespace) -> int:
    if args.command == "validate":
        return validate(args.paths, require_models=args.require_models)
    if args.command == "crd":
        from mlplatform.kube import crd

        sys.stdout.write(crd.render())
        return 0
    # The settings and the options, merged and checked before anything is done.
    if args.command == "operator":
        operator_config = kube_options.load(args)
        from mlplatform.kube import main as kube_main

        return int(kube_main.run(operator_config))
    if args.command == "logs":
        return logs_options.run(logs_options.load(args))
    local_config = local_options.load(args)
    from mlplatform.local import main as local_main

    return int(local_main.run(local_config))
