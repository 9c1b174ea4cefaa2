"""Policy: who may do what, decided in one place.

Handlers call ``policy.authorize(ctx, "os_compute_api:servers:create",
target)``. Rules come from :mod:`stratus.policy.defaults` and may be
overridden, or new ones added, by a policy file (YAML or JSON mapping rule
names to check strings, as oslo.policy's) named by ``[oslo_policy]
policy_file``. ``stratus policy list`` prints the effective rules.
"""
from __future__ import annotations

import json
import os
import threading
from typing import Any, Mapping

from stratus import exception
from stratus.policy.checks import Check, PolicySyntaxError, expand_roles, parse
from stratus.policy.defaults import RuleDefault, all_defaults

__all__ = ["Enforcer", "PolicySyntaxError", "RuleDefault", "authorize", "check", "configure",
           "get_enforcer"]


class Enforcer:
    def __init__(self, defaults: list[RuleDefault] | None = None,
                 policy_file: str | None = None) -> None:
        self.defaults = {d.name: d for d in (defaults or all_defaults())}
        self.overrides: dict[str, str] = _read_policy_file(policy_file) if policy_file else {}
        self.policy_file = policy_file
        self._checks: dict[str, Check] = {}
        for name, text in self.effective().items():
            try:
                self._checks[name] = parse(text)
            except PolicySyntaxError as exc:
                raise exception.ConfigError(reason=f"policy rule {name!r}: {exc}")

    def effective(self) -> dict[str, str]:
        """Rule name -> check string, defaults overlaid by the policy file."""
        rules = {name: d.check_str for name, d in self.defaults.items()}
        rules.update(self.overrides)
        return rules

    def _resolve(self, name: str) -> Check:
        try:
            return self._checks[name]
        except KeyError:
            raise exception.ConfigError(reason=f"policy rule {name!r} is not defined")

    def check(self, ctx: Any, rule: str, target: Mapping[str, Any] | None = None) -> bool:
        creds = {"roles": expand_roles(ctx.roles or []), "user_id": ctx.user_id,
                 "project_id": ctx.project_id, "is_admin": bool(ctx.is_admin)}
        if target is None:
            target = {"project_id": ctx.project_id, "user_id": ctx.user_id}
        return self._resolve(rule)(creds, target, self._resolve)

    def authorize(self, ctx: Any, rule: str, target: Mapping[str, Any] | None = None) -> None:
        """Raise Forbidden (403, Nova's message) unless ``rule`` allows it."""
        if not self.check(ctx, rule, target):
            raise exception.Forbidden(action=rule)


def _read_policy_file(path: str) -> dict[str, str]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise exception.ConfigError(reason=f"cannot read policy file {path}: {exc.strerror}")
    try:
        if path.endswith(".json"):
            data = json.loads(text or "{}")
        else:
            import yaml

            data = yaml.safe_load(text) or {}
    except ValueError as exc:
        raise exception.ConfigError(reason=f"cannot parse policy file {path}: {exc}")
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise exception.ConfigError(reason=f"policy file {path} must map rule names to "
                                           f"check strings")
    return {str(k): v for k, v in data.items()}


_enforcer: Enforcer | None = None
_lock = threading.Lock()


def configure(policy_file: str | None) -> Enforcer:
    """Install the process-wide enforcer (done once by each API process)."""
    global _enforcer
    if policy_file and not os.path.isabs(policy_file):
        policy_file = os.path.abspath(policy_file)
    with _lock:
        _enforcer = Enforcer(policy_file=policy_file if policy_file and
                             os.path.exists(policy_file) else None)
    return _enforcer


def get_enforcer() -> Enforcer:
    global _enforcer
    if _enforcer is None:
        with _lock:
            if _enforcer is None:
                _enforcer = Enforcer()
    return _enforcer


def authorize(ctx: Any, rule: str, target: Mapping[str, Any] | None = None) -> None:
    get_enforcer().authorize(ctx, rule, target)


def check(ctx: Any, rule: str, target: Mapping[str, Any] | None = None) -> bool:
    return get_enforcer().check(ctx, rule, target)
