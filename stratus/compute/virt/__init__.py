"""Virt drivers: the hypervisors stratus-compute can run instances on.

:func:`load_driver` builds the driver named by ``[compute] driver``. Drivers
are imported only when chosen, so a host without libvirt never imports it.
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from stratus import exception
from stratus.compute.virt.driver import ComputeDriver

#: Short names for the drivers shipped with Stratus.
DRIVERS: dict[str, str] = {
    "fake": "stratus.compute.virt.fake:FakeDriver",
    "libvirt": "stratus.compute.virt.libvirt.driver:LibvirtDriver",
}


def load_driver(name: str, host: str, options: Mapping[str, Any]) -> ComputeDriver:
    """The driver ``name`` (a key of :data:`DRIVERS`, or ``module.path:ClassName``)
    for compute host ``host``, configured with ``options``.

    Raises :class:`stratus.exception.ConfigError` when the name does not
    resolve to a :class:`ComputeDriver` subclass or the options are invalid.
    """
    spec = DRIVERS.get(name, name)
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise exception.ConfigError(
            reason=f"unknown virt driver {name!r}: use one of {sorted(DRIVERS)} "
                   "or module.path:ClassName")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise exception.ConfigError(
            reason=f"cannot import virt driver module {module_name!r}: {exc}") from exc
    driver_class = getattr(module, class_name, None)
    if not (isinstance(driver_class, type) and issubclass(driver_class, ComputeDriver)):
        raise exception.ConfigError(
            reason=f"virt driver {spec!r} is not a ComputeDriver subclass")
    return driver_class(host, options)
