"""ImagePropertiesFilter: the host can run the image's architecture, hypervisor
type, VM mode and hypervisor version (Nova's filter).

Image properties, by their current or legacy names: ``hw_architecture``
(``architecture``), ``img_hv_type`` (``hypervisor_type``), ``hw_vm_mode``
(``vm_mode``), ``img_hv_requested_version``
(``hypervisor_version_requires``, e.g. ``">=6.0,<7.0"``). The host passes
when one of its supported instances ``[arch, hypervisor_type, vm_mode]``
matches every property given (names canonicalised as Nova's fields do) and
its version satisfies the requested one. ``min_ram`` / ``min_disk`` are
checked by the API at create.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from stratus.scheduler.filters import BaseFilter
from stratus.scheduler.host_state import HostState
from stratus.scheduler.request import SchedulingRequest

_ARCH_ALIASES = {"i386": "i686", "i486": "i686", "i586": "i686", "x86_32": "i686",
                 "x86_32p": "i686", "amd64": "x86_64"}
_HV_ALIASES = {"xapi": "xen"}
_VM_MODE_ALIASES = {"pv": "xen", "hv": "hvm", "baremetal": "hvm"}
_VERSION_CLAUSE = re.compile(r"^\s*(<=|>=|==|!=|<|>)\s*([0-9]+(?:\.[0-9]+)*)\s*$")


def _prop(props: Mapping[str, Any], name: str, legacy: str) -> str | None:
    value = props.get(name, props.get(legacy))
    return str(value).lower() if value not in (None, "") else None


def wanted(props: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(arch, hypervisor type, vm mode) the image asks for, canonical."""
    arch = _prop(props, "hw_architecture", "architecture")
    hv_type = _prop(props, "img_hv_type", "hypervisor_type")
    vm_mode = _prop(props, "hw_vm_mode", "vm_mode")
    return (_ARCH_ALIASES.get(arch, arch) if arch else None,
            _HV_ALIASES.get(hv_type, hv_type) if hv_type else None,
            _VM_MODE_ALIASES.get(vm_mode, vm_mode) if vm_mode else None)


def version_tuple(version: int) -> tuple[int, ...]:
    """Nova's convert_version_to_str as a tuple: 6001002 -> (6, 1, 2)."""
    parts: list[int] = []
    while version:
        version, part = divmod(version, 1000)
        parts.insert(0, part)
    return tuple(parts) or (0,)


def version_satisfies(version: tuple[int, ...], predicate: str) -> bool:
    """``">=6.0,<7.0"`` style predicates (comma-separated clauses)."""
    for clause in predicate.split(","):
        found = _VERSION_CLAUSE.match(clause)
        if not found:
            return False
        op, text = found.groups()
        other = tuple(int(p) for p in text.split("."))
        width = max(len(version), len(other))
        mine = version + (0,) * (width - len(version))
        other = other + (0,) * (width - len(other))
        if not {"<": mine < other, "<=": mine <= other, ">": mine > other,
                ">=": mine >= other, "==": mine == other, "!=": mine != other}[op]:
            return False
    return True


class ImagePropertiesFilter(BaseFilter):
    name = "ImagePropertiesFilter"
    static = True

    def applies(self, req: SchedulingRequest) -> bool:
        props = req.image_properties
        return any(wanted(props)) or bool(
            props.get("img_hv_requested_version") or props.get("hypervisor_version_requires"))

    def passes(self, host: HostState, req: SchedulingRequest) -> bool:
        props = req.image_properties
        checked = wanted(props)
        required = props.get("img_hv_requested_version") or \
            props.get("hypervisor_version_requires")
        if required and host.hypervisor_version and not version_satisfies(
                version_tuple(host.hypervisor_version), str(required)):
            return False
        if not any(checked):
            return True
        for supported in host.supported_instances:
            canonical = [str(x).lower() for x in supported]
            if all(want is None or want in canonical for want in checked):
                return True
        return False
