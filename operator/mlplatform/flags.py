"""Command options declared once: flag(s), environment variable, parser, default and help.

A command's options are the fields of one frozen dataclass (``kube.options.OperatorConfig``,
``local.options.LocalConfig``); each field's metadata says how it is given on the command line
and, for a setting an administrator fixes once per deployment, which environment variable
sets it too. From those declarations come the argparse arguments (``add_arguments``, with the
default and the variable in each option's help) and, after parsing, the values (``resolve``,
merged with the settings into the frozen object by ``load``):

    a flag on the command line  >  its environment variable  >  the declared default

A variable is read with the same function as its flag, so a bad value meets the same rule in
the same words, named by the variable instead of the flag. Options that say what one
invocation does (paths, ``--once``, ``--prune-empty``) have no variable: a variable left over
in a shell must not change what a command removes.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from mlplatform import argtypes, config
from mlplatform.config import InvalidSettings, Settings

T = TypeVar("T")
C = TypeVar("C")

Kind = Literal["value", "switch", "repeated", "positional"]

_KEY = "mlplatform.option"


@dataclass(frozen=True)
class ConstFlag:
    """A flag that sets its option to a fixed value (``--wide`` for ``--output wide``)."""

    flag: str
    value: str
    help: str


@dataclass(frozen=True)
class Declared:
    """How one option is given; kept in its dataclass field's metadata."""

    flags: tuple[str, ...]
    help: str
    kind: Kind
    parse: Callable[[str], Any]
    env: str | None = None
    env_parse: Callable[[str], Any] | None = None  # None: ``parse`` (the flag's own rules)
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    group: str | None = None  # options of one group exclude each other
    also: tuple[ConstFlag, ...] = ()

    def read_env(self, text: str) -> Any:
        """The variable's value: a list is comma-separated, a switch a boolean word."""
        if self.env_parse is not None:
            return self.env_parse(text)
        if self.kind == "switch":
            return argtypes.boolean(text)
        if self.kind == "repeated":  # empty items are skipped: an empty variable is no value
            items = (item.strip() for item in text.split(","))
            return tuple(dict.fromkeys(self.parse(item) for item in items if item))
        value = self.parse(text)
        if self.choices is not None and value not in self.choices:
            raise argparse.ArgumentTypeError(f"must be one of {', '.join(self.choices)}")
        return value


def option(
    default: T,
    *flags: str,
    help: str,
    parse: Callable[[str], Any] = str,
    env: str | None = None,
    env_parse: Callable[[str], Any] | None = None,
    metavar: str | None = None,
    choices: Sequence[str] | None = None,
    group: str | None = None,
    also: Sequence[ConstFlag] = (),
) -> T:
    """An option with one value (``--workers 8``)."""
    declared = Declared(
        flags=flags,
        help=help,
        kind="value",
        parse=parse,
        env=env,
        env_parse=env_parse,
        metavar=metavar,
        choices=tuple(choices) if choices is not None else None,
        group=group,
        also=tuple(also),
    )
    field: T = dataclasses.field(default=default, metadata={_KEY: declared})
    return field


def switch(*flags: str, help: str, env: str | None = None, group: str | None = None) -> bool:
    """An option that is off unless given (``--standalone``); its variable is true or false."""
    declared = Declared(flags=flags, help=help, kind="switch", parse=str, env=env, group=group)
    field: bool = dataclasses.field(default=False, metadata={_KEY: declared})
    return field


def repeated(
    *flags: str,
    help: str,
    parse: Callable[[str], T],
    env: str | None = None,
    metavar: str | None = None,
    group: str | None = None,
) -> tuple[T, ...]:
    """An option given once per value (``-n a -n b``); its variable is comma-separated."""
    declared = Declared(
        flags=flags,
        help=help,
        kind="repeated",
        parse=parse,
        env=env,
        metavar=metavar,
        group=group,
    )
    field: tuple[T, ...] = dataclasses.field(default=(), metadata={_KEY: declared})
    return field


def positional(metavar: str, *, help: str, parse: Callable[[str], T]) -> tuple[T, ...]:
    """One or more positional arguments (``PATH...``)."""
    declared = Declared(flags=(), help=help, kind="positional", parse=parse, metavar=metavar)
    field: tuple[T, ...] = dataclasses.field(default=(), metadata={_KEY: declared})
    return field


def declared(cls: type[Any]) -> list[tuple[str, Declared, Any]]:
    """The options of a config dataclass: (field name, declaration, default), in order."""
    found = []
    for item in dataclasses.fields(cls):
        if _KEY in item.metadata:
            found.append((item.name, item.metadata[_KEY], item.default))
    return found


def environment_names(cls: type[Any]) -> list[str]:
    """The environment variables the options of ``cls`` read."""
    return [d.env for _, d, _ in declared(cls) if d.env is not None]


def add_arguments(parser: argparse.ArgumentParser, cls: type[Any]) -> None:
    """The argparse arguments of every option of ``cls``.

    Options get ``SUPPRESS`` as their argparse default, so the parsed namespace holds only
    what was given on the command line and ``resolve`` can tell a flag from a default.
    """
    groups: dict[str, argparse._MutuallyExclusiveGroup] = {}
    for name, item, default in declared(cls):
        target: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup = parser
        if item.group is not None:
            if item.group not in groups:
                groups[item.group] = parser.add_mutually_exclusive_group()
            target = groups[item.group]
        text = _help(item, default)
        if item.kind == "positional":
            target.add_argument(name, nargs="+", type=item.parse, metavar=item.metavar, help=text)
            continue
        common: dict[str, Any] = {"dest": name, "help": text, "default": argparse.SUPPRESS}
        if item.kind == "switch":
            target.add_argument(*item.flags, action="store_true", **common)
        elif item.kind == "repeated":
            target.add_argument(
                *item.flags, action="append", type=item.parse, metavar=item.metavar, **common
            )
        else:
            target.add_argument(
                *item.flags,
                type=item.parse,
                metavar=item.metavar,
                choices=item.choices,
                **common,
            )
        for extra in item.also:
            target.add_argument(
                extra.flag,
                action="store_const",
                const=extra.value,
                dest=name,
                default=argparse.SUPPRESS,
                help=_escape(extra.help),
            )


def resolve(
    cls: type[Any], args: argparse.Namespace, environ: Mapping[str, str]
) -> tuple[dict[str, Any], list[str]]:
    """Each option's value (flag > variable > default) and the problems, one line each."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, item, default in declared(cls):
        if hasattr(args, name):
            given = getattr(args, name)
            if item.kind == "repeated":
                given = tuple(dict.fromkeys(given))  # -n a -n a watches a once
            elif item.kind == "positional":
                given = tuple(given)
            values[name] = given
        elif item.env is not None and item.env in environ:
            try:
                values[name] = item.read_env(environ[item.env])
            except (argparse.ArgumentTypeError, ValueError) as error:
                problems.append(f"{item.env}: {error}")
        else:
            values[name] = default
    return values, problems


def load(
    cls: type[C],
    args: argparse.Namespace,
    environ: Mapping[str, str] | None,
    *,
    settings: Callable[[Mapping[str, str]], Settings] = Settings.load,
    check: Callable[[Mapping[str, Any]], list[str]] | None = None,
) -> C:
    """One command's frozen config: the settings and its options, read once.

    ``environ``: the variables to read (None: the process environment, and ``.env`` in
    development). Every bad value, of a setting, an option's variable or a combination
    (``check``), is one ``VARIABLE: rule`` in one ``InvalidSettings``, raised before
    anything is done.
    """
    env = config.read_environment(environ)
    problems: list[str] = []
    loaded: Settings | None = None
    try:
        loaded = settings(env)
    except InvalidSettings as error:
        problems.extend(error.problems)
    values, bad = resolve(cls, args, env)
    problems.extend(bad)
    if check is not None and not bad:
        problems.extend(check(values))
    if problems or loaded is None:
        raise InvalidSettings(problems)
    make: Callable[..., C] = cls
    return make(settings=loaded, **values)


def _help(item: Declared, default: Any) -> str:
    """The option's help with its default and its variable, as ``--help`` prints them."""
    text = _escape(item.help)
    shown = _shown(default)
    if shown is not None and item.kind not in ("switch", "positional"):
        text += f" (default: {_escape(shown)})"
    if item.env is not None:
        text += f" [env {item.env}]"
    return text


def _shown(default: Any) -> str | None:
    if default is None or default == ():
        return None
    return str(default)


def _escape(text: str) -> str:
    """argparse formats help with ``%``: a literal one is doubled."""
    return text.replace("%", "%%")


def workers() -> int:
    """``--workers`` / ``MLPLATFORM_WORKERS``, the same for both front ends."""
    return option(
        8,
        "--workers",
        parse=argtypes.positive_int,
        env="MLPLATFORM_WORKERS",
        metavar="N",
        help="models reconciled at the same time",
    )
