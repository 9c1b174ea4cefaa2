"""A small declarative INI configuration system, shaped like oslo.config.

Options are declared once (name, type, default, help) in
:mod:`stratus.conf.opts`; loading parses one INI file, converts and checks
every value, and fails with a message that names ``[group] option``. The same
declarations print the sample file (``stratus config sample``).
"""
from __future__ import annotations

import configparser
import dataclasses
import textwrap
from typing import Any, Callable, Iterable

from stratus.exception import ConfigError


def _to_bool(value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not a boolean")


def _to_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": _to_bool,
    "list": _to_list,
}


@dataclasses.dataclass(frozen=True)
class Opt:
    """One option: ``type`` is one of str, int, float, bool, list."""

    name: str
    type: str = "str"
    default: Any = None
    help: str = ""
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    secret: bool = False

    def convert(self, group: str, raw: str) -> Any:
        try:
            value = _CONVERTERS[self.type](raw)
        except (ValueError, TypeError) as exc:
            raise ConfigError(reason=f"[{group}] {self.name}: {exc} (expected {self.type})")
        self.check(group, value)
        return value

    def check(self, group: str, value: Any) -> None:
        if value is None:
            return
        if self.choices is not None and value not in self.choices:
            raise ConfigError(reason=f"[{group}] {self.name}: {value!r} is not one of "
                                     f"{', '.join(map(str, self.choices))}")
        if self.min is not None and value < self.min:
            raise ConfigError(reason=f"[{group}] {self.name}: {value!r} is below the minimum {self.min}")
        if self.max is not None and value > self.max:
            raise ConfigError(reason=f"[{group}] {self.name}: {value!r} is above the maximum {self.max}")


class Group:
    """The values of one section; attribute access by option name."""

    def __init__(self, name: str, values: dict[str, Any]) -> None:
        self._name = name
        self.__dict__.update(values)

    def __repr__(self) -> str:
        return f"<Group [{self._name}]>"


class Config:
    """Loaded configuration: ``conf.database.connection``, ``conf.DEFAULT.host``.

    Options of ``[DEFAULT]`` are also reachable directly: ``conf.host``.
    """

    def __init__(self, registry: dict[str, list[Opt]], path: str | None = None) -> None:
        self._registry = registry
        self.path = path
        #: (group, option) pairs the config file set, e.g. to let a file's choice win
        #: over a command line default.
        self.from_file: set[tuple[str, str]] = set()
        for group, opts in registry.items():
            setattr(self, group, Group(group, {o.name: o.default for o in opts}))

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: fall back to [DEFAULT].
        default = self.__dict__.get("DEFAULT")
        if default is not None and name in default.__dict__:
            return default.__dict__[name]
        raise AttributeError(name)

    def set(self, group: str, name: str, value: Any) -> None:
        """Override one value (as the all-in-one and tests do); checked like a file value."""
        opt = self._find(group, name)
        if isinstance(value, str) and opt.type != "str":
            value = opt.convert(group, value)
        else:
            opt.check(group, value)
        setattr(getattr(self, group), name, value)

    def _find(self, group: str, name: str) -> Opt:
        for opt in self._registry.get(group, []):
            if opt.name == name:
                return opt
        raise ConfigError(reason=f"unknown option [{group}] {name}")

    def load_file(self, path: str) -> None:
        parser = configparser.ConfigParser(interpolation=None, default_section="__none__")
        try:
            with open(path, encoding="utf-8") as f:
                parser.read_file(f)
        except OSError as exc:
            raise ConfigError(reason=f"cannot read config file {path}: {exc.strerror}")
        except configparser.Error as exc:
            raise ConfigError(reason=f"cannot parse config file {path}: {exc}")
        self.path = path
        for section in parser.sections():
            if section not in self._registry:
                raise ConfigError(reason=f"unknown section [{section}] in {path}")
            for name, raw in parser.items(section):
                opt = self._find(section, name)
                setattr(getattr(self, section), name, opt.convert(section, raw))
                self.from_file.add((section, name))


def sample(registry: dict[str, list[Opt]]) -> str:
    """Render a commented sample INI file from the declarations."""
    out: list[str] = []
    for group, opts in registry.items():
        out.append(f"[{group}]\n")
        for opt in opts:
            for line in textwrap.wrap(opt.help, 76) or [""]:
                out.append(f"# {line}".rstrip() + "\n")
            details = f"type: {opt.type}"
            if opt.choices:
                details += f"; one of: {', '.join(map(str, opt.choices))}"
            if opt.min is not None:
                details += f"; min: {opt.min}"
            if opt.max is not None:
                details += f"; max: {opt.max}"
            out.append(f"# ({details})\n")
            out.append(f"#{opt.name} = {_render(opt.default)}\n\n")
    return "".join(out)


def _render(value: Any) -> str:
    if value is None:
        return "<None>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def merge(*groups: Iterable[tuple[str, list[Opt]]]) -> dict[str, list[Opt]]:
    registry: dict[str, list[Opt]] = {}
    for items in groups:
        for group, opts in items:
            registry.setdefault(group, []).extend(opts)
    return registry
