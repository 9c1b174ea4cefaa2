"""Configuration: one INI file for every service (see :mod:`stratus.conf.opts`)."""
from __future__ import annotations

import os
from typing import Any

from stratus.conf.cfg import Config, Opt, sample
from stratus.conf.opts import REGISTRY

__all__ = ["Config", "Opt", "load", "new", "sample_text"]


def new() -> Config:
    """A configuration with every option at its default."""
    return Config(REGISTRY)


def load(path: str | None, overrides: dict[tuple[str, str], Any] | None = None) -> Config:
    """Load ``path`` (or only defaults when None), apply ``overrides``
    ({(group, option): value}, e.g. from the command line), then fill the
    defaults derived from other options."""
    conf = new()
    if path:
        conf.load_file(path)
    for (group, name), value in (overrides or {}).items():
        conf.set(group, name, value)
    finalize(conf)
    return conf


def finalize(conf: Config) -> None:
    """Derive the defaults that depend on other options (paths under state_path)."""
    state = os.path.abspath(conf.DEFAULT.state_path)
    conf.DEFAULT.state_path = state
    if not conf.database.connection:
        conf.database.connection = f"sqlite:///{os.path.join(state, 'stratus.sqlite')}"
    if not conf.identity.key_file:
        conf.identity.key_file = os.path.join(state, "fernet.key")
    if not conf.image.store_dir:
        conf.image.store_dir = os.path.join(state, "images")
    if not conf.libvirt.instances_path:
        conf.libvirt.instances_path = os.path.join(state, "instances")
    if not conf.libvirt.images_path:
        conf.libvirt.images_path = os.path.join(conf.libvirt.instances_path, "_base")
    if not conf.api.public_url:
        host = conf.api.listen if conf.api.listen not in ("0.0.0.0", "::") else "127.0.0.1"
        conf.api.public_url = f"http://{host}:{conf.api.port}"
    conf.api.public_url = conf.api.public_url.rstrip("/")
    if not conf.service_user.auth_url:
        conf.service_user.auth_url = f"{conf.api.public_url}/identity"


def sample_text() -> str:
    return sample(REGISTRY)
