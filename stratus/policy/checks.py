"""Check strings, in the syntax operators know from oslo.policy files.

    role:admin
    role:member and project_id:%(project_id)s
    rule:context_is_admin or (role:reader and project_id:%(project_id)s)
    not role:reader
    @   (always)        !   (never)

``role:X`` matches a role of the caller (after role implication, see
:func:`expand_roles`); ``rule:Y`` refers to another rule; any other
``attr:value`` compares the caller's ``attr`` (user_id, project_id, is_admin,
...) with ``value``, where ``%(key)s`` is taken from the target (the object
acted on). A check string is parsed once into a tree of small callables.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Mapping

Creds = Mapping[str, Any]
Target = Mapping[str, Any]
Resolve = Callable[[str], "Check"]


class Check:
    def __call__(self, creds: Creds, target: Target, resolve: Resolve) -> bool:
        raise NotImplementedError


class _Always(Check):
    def __call__(self, creds: Creds, target: Target, resolve: Resolve) -> bool:
        return True

    def __str__(self) -> str:
        return "@"


class _Never(Check):
    def __call__(self, creds: Creds, target: Target, resolve: Resolve) -> bool:
        return False

    def __str__(self) -> str:
        return "!"


class _Not(Check):
    def __init__(self, inner: Check) -> None:
        self.inner = inner

    def __call__(self, creds: Creds, target: Target, resolve: Resolve) -> bool:
        return not self.inner(creds, target, resolve)

    def __str__(self) -> str:
        return f"not {self.inner}"


class _And(Check):
    def __init__(self, parts: list[Check]) -> None:
        self.parts = parts

    def __call__(self, creds: Creds, target: Target, resolve: Resolve) -> bool:
        return all(p(creds, target, resolve) for p in self.parts)

    def __str__(self) -> str:
        return "(" + " and ".join(map(str, self.parts)) + ")"


class _Or(Check):
    def __init__(self, parts: list[Check]) -> None:
        self.parts = parts

    def __call__(self, creds: Creds, target: Target, resolve: Resolve) -> bool:
        return any(p(creds, target, resolve) for p in self.parts)

    def __str__(self) -> str:
        return "(" + " or ".join(map(str, self.parts)) + ")"


class _Role(Check):
    def __init__(self, role: str) -> None:
        self.role = role.lower()

    def __call__(self, creds: Creds, target: Target, resolve: Resolve) -> bool:
        return self.role in creds.get("roles", ())

    def __str__(self) -> str:
        return f"role:{self.role}"


class _Rule(Check):
    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, creds: Creds, target: Target, resolve: Resolve) -> bool:
        return resolve(self.name)(creds, target, resolve)

    def __str__(self) -> str:
        return f"rule:{self.name}"


_SUBST = re.compile(r"%\((\w+)\)s")


class _Generic(Check):
    """``attr:value``: the caller's ``attr`` equals ``value`` (``%(key)s``
    substituted from the target); a target without the key never matches."""

    def __init__(self, attr: str, match: str) -> None:
        self.attr = attr
        self.match = match

    def __call__(self, creds: Creds, target: Target, resolve: Resolve) -> bool:
        try:
            wanted = _SUBST.sub(lambda m: str(target[m.group(1)]), self.match)
        except KeyError:
            return False
        if len(self.attr) >= 2 and self.attr[0] == self.attr[-1] and self.attr[0] in "'\"":
            return self.attr[1:-1] == wanted
        have = creds.get(self.attr)
        if isinstance(have, bool):
            return str(have).lower() == wanted.lower()
        return have is not None and str(have) == wanted

    def __str__(self) -> str:
        return f"{self.attr}:{self.match}"


class PolicySyntaxError(ValueError):
    pass


def _tokens(text: str) -> list[str]:
    """Split on white space, peeling grouping parentheses off each chunk (the
    ones in ``%(key)s`` belong to the chunk)."""
    tokens: list[str] = []
    for chunk in text.split():
        while chunk.startswith("("):
            tokens.append("(")
            chunk = chunk[1:]
        closing = 0
        while chunk.endswith(")"):
            closing += 1
            chunk = chunk[:-1]
        if chunk:
            tokens.append(chunk)
        tokens.extend(")" * closing)
    return tokens


def parse(text: str) -> Check:
    """Parse a check string; an empty string means "always", as in oslo.policy."""
    tokens = _tokens(text or "")
    if not tokens:
        return _Always()
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise PolicySyntaxError(f"unexpected end of {text!r}")
        pos += 1
        return tokens[pos - 1]

    def or_expr() -> Check:
        parts = [and_expr()]
        while peek() is not None and peek().lower() == "or":  # type: ignore[union-attr]
            take()
            parts.append(and_expr())
        return parts[0] if len(parts) == 1 else _Or(parts)

    def and_expr() -> Check:
        parts = [not_expr()]
        while peek() is not None and peek().lower() == "and":  # type: ignore[union-attr]
            take()
            parts.append(not_expr())
        return parts[0] if len(parts) == 1 else _And(parts)

    def not_expr() -> Check:
        token = take()
        if token.lower() == "not":
            return _Not(not_expr())
        if token == "(":
            inner = or_expr()
            if take() != ")":
                raise PolicySyntaxError(f"missing ')' in {text!r}")
            return inner
        return atom(token)

    def atom(token: str) -> Check:
        if token == "@":
            return _Always()
        if token == "!":
            return _Never()
        kind, sep, match = token.partition(":")
        if not sep or not kind or not match:
            raise PolicySyntaxError(f"cannot understand {token!r} in {text!r}")
        if kind == "role":
            return _Role(match)
        if kind == "rule":
            return _Rule(match)
        return _Generic(kind, match)

    check = or_expr()
    if pos != len(tokens):
        raise PolicySyntaxError(f"unexpected {tokens[pos]!r} in {text!r}")
    return check


# Keystone's default implied roles: admin implies member implies reader.
IMPLIED_ROLES: dict[str, tuple[str, ...]] = {"admin": ("member", "reader"),
                                             "member": ("reader",)}


def expand_roles(roles: list[str] | tuple[str, ...]) -> set[str]:
    expanded = {r.lower() for r in roles}
    for role in list(expanded):
        expanded.update(IMPLIED_ROLES.get(role, ()))
    return expanded
