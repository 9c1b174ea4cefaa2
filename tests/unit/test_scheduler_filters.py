"""Each scheduler filter alone, on hand-made host states and requests."""
from __future__ import annotations

import collections
import json

import pytest

from stratus.exception import ConfigError
from stratus.scheduler import filters
from stratus.scheduler.filters import extra_specs_ops
from stratus.scheduler.filters.affinity import (DifferentHostFilter, SameHostFilter,
                                                ServerGroupAffinityFilter,
                                                ServerGroupAntiAffinityFilter)
from stratus.scheduler.filters.aggregates import (AggregateInstanceExtraSpecsFilter,
                                                  AggregateMultiTenancyIsolation)
from stratus.scheduler.filters.availability_zone import AvailabilityZoneFilter
from stratus.scheduler.filters.capabilities import ComputeCapabilitiesFilter
from stratus.scheduler.filters.compute import ComputeFilter, IgnoreHostsFilter
from stratus.scheduler.filters.image_properties import (ImagePropertiesFilter,
                                                        version_satisfies, version_tuple)
from stratus.scheduler.filters.resources import CoreFilter, DiskFilter, RamFilter
from stratus.scheduler.host_state import AggregateInfo, HostState, ServiceInfo
from stratus.scheduler.request import GroupInfo, SchedulingRequest

NOW = 1000.0


def host(name: str = "h1", **kw) -> HostState:
    aggregates = kw.pop("aggregates", ())
    service = kw.pop("service", ServiceInfo())
    state = HostState(host=name, nodename=name, node_id=1, node_uuid="u", generation=0,
                      updated_at=None, **kw)
    state.service = service
    state.set_aggregates(tuple(AggregateInfo(i, f"a{i}", md) for i, md in
                               enumerate(aggregates, start=1)))
    return state


def req(**kw) -> SchedulingRequest:
    kw.setdefault("resources", {"vcpus": 1, "memory_mb": 512, "disk_gb": 10})
    kw.setdefault("liveness_floor", NOW - 5)
    return SchedulingRequest(now=NOW, down_time=60, **kw)


# -- registry -------------------------------------------------------------------------

def test_build_keeps_the_configured_order_and_adds_the_internal_filter():
    built = filters.build(["RamFilter", "ComputeFilter", "RamFilter"])
    assert [f.name for f in built] == ["RamFilter", "ComputeFilter", "IgnoreHostsFilter"]


def test_build_refuses_unknown_names():
    with pytest.raises(ConfigError) as err:
        filters.build(["ComputeFilter", "NoSuchFilter"])
    assert "NoSuchFilter" in str(err.value)


# -- extra specs operators ------------------------------------------------------------

@pytest.mark.parametrize("value,requirement,expected", [
    ("1", "1", True), ("1", "2", False), ("abc", "abc", True),
    ("123", "= 123", True), ("124", "= 123", True), ("122", "= 123", False),
    ("12", "== 12", True), ("12.0", "== 12", True), ("13", "== 12", False),
    ("13", "!= 12", True), ("12", ">= 12", True), ("11", ">= 12", False),
    ("12", "<= 12", True), ("13", "<= 12", False), ("x", ">= 12", False),
    ("abc", "s== abc", True), ("abd", "s!= abc", True), ("abc", "s< abd", True),
    ("abc", "s<= abc", True), ("abd", "s> abc", True), ("abc", "s>= abd", False),
    ("a long value", "<in> long", True), ("a long value", "<in> short", False),
    ("[a, b, c]", "<all-in> a c", True), ("[a, b]", "<all-in> a c", False),
    ("b", "<or> a <or> b <or> c", True), ("d", "<or> a <or> b", False),
    (None, "= 1", False), (None, "x", False), ("1", "=", False),
])
def test_extra_specs_ops(value, requirement, expected):
    assert extra_specs_ops.match(value, requirement) is expected


# -- ComputeFilter, IgnoreHosts ----------------------------------------------------------

def test_compute_filter_needs_an_enabled_live_service():
    f = ComputeFilter()
    assert f.passes(host(), req())  # not old: the floor counts
    assert not f.passes(host(service=ServiceInfo(disabled=True)), req())
    assert not f.passes(host(service=ServiceInfo(forced_down=True)), req())
    assert f.passes(host(service=ServiceInfo(last_seen=NOW - 59)), req())
    assert not f.passes(host(service=ServiceInfo(last_seen=NOW - 61)), req())
    assert not f.passes(host(service=None), req())
    assert not f.passes(host(), req(liveness_floor=NOW - 61))


def test_ignore_hosts_filter():
    f = IgnoreHostsFilter()
    assert not f.applies(req())
    assert not f.passes(host("h1"), req(ignore_hosts=frozenset({"h1"})))
    assert f.passes(host("h2"), req(ignore_hosts=frozenset({"h1"})))


# -- resources ----------------------------------------------------------------------------

def test_resource_filters_use_free_capacity():
    h = host(total_vcpus=4, total_memory_mb=1024, total_disk_gb=20, used_vcpus=3,
             used_memory_mb=512, used_disk_gb=10)
    assert RamFilter().passes(h, req()) and CoreFilter().passes(h, req())
    assert DiskFilter().passes(h, req())
    big = req(resources={"vcpus": 2, "memory_mb": 513, "disk_gb": 11})
    assert not RamFilter().passes(h, big) and not CoreFilter().passes(h, big)
    assert not DiskFilter().passes(h, big)
    assert not DiskFilter().applies(req(resources={"vcpus": 1, "memory_mb": 1, "disk_gb": 0}))


# -- availability zones -------------------------------------------------------------------------

def test_availability_zone_filter():
    f = AvailabilityZoneFilter()
    assert f.static and not f.applies(req())
    assert f.passes(host(), req(availability_zone="nova"))
    in_az1 = host(aggregates=[{"availability_zone": "az1"}])
    assert f.passes(in_az1, req(availability_zone="az1"))
    assert not f.passes(in_az1, req(availability_zone="nova"))
    legacy = host(service=ServiceInfo(availability_zone="az2"))
    legacy.refresh_zone()
    assert f.passes(legacy, req(availability_zone="az2"))


# -- image properties ----------------------------------------------------------------------------

FAKE_X86 = (("x86_64", "fake", "hvm"),)


@pytest.mark.parametrize("props,passes", [
    ({}, True),
    ({"hw_architecture": "x86_64"}, True),
    ({"architecture": "amd64"}, True),            # legacy name, canonicalised
    ({"hw_architecture": "aarch64"}, False),
    ({"img_hv_type": "fake", "hw_vm_mode": "hvm"}, True),
    ({"hypervisor_type": "kvm"}, False),
    ({"vm_mode": "hv"}, True),                    # Nova's legacy "hv" is hvm
    ({"hw_vm_mode": "xen"}, False),
    ({"img_hv_requested_version": ">=1.0"}, True),
    ({"img_hv_requested_version": ">=1.0,<1.1", "hw_architecture": "x86_64"}, True),
    ({"hypervisor_version_requires": ">2.0"}, False),
])
def test_image_properties_filter(props, passes):
    f = ImagePropertiesFilter()
    h = host(supported_instances=FAKE_X86, hypervisor_version=1000)
    r = req(image_properties=props)
    assert f.applies(r) is bool(props)
    assert not props or f.passes(h, r) is passes


def test_image_properties_fail_a_host_that_advertises_nothing():
    assert not ImagePropertiesFilter().passes(host(), req(image_properties={
        "hw_architecture": "x86_64"}))


def test_hypervisor_versions():
    assert version_tuple(6001002) == (6, 1, 2) and version_tuple(1000) == (1, 0)
    assert version_satisfies((6, 1), ">=6.0, <7") and not version_satisfies((7,), "<7")
    assert version_satisfies((1, 0), "==1") and not version_satisfies((1, 0), "bogus")


# -- capabilities -----------------------------------------------------------------------------------

def test_capabilities_filter_scopes_and_nesting():
    f = ComputeCapabilitiesFilter()
    h = host(hypervisor_type="fake", cpu_info=json.dumps(
        {"arch": "x86_64", "features": ["vmx", "sse4"], "topology": {"cores": 8}}),
        stats={"gpu": "true", "io_workload": 3})
    assert not f.applies(req())
    ok = {"capabilities:hypervisor_type": "fake", "capabilities:cpu_info:arch": "x86_64",
          "capabilities:cpu_info:topology:cores": ">= 4",
          "capabilities:cpu_info:features": "<in> vmx", "capabilities:gpu": "true",
          "hw:cpu_policy": "dedicated",       # another scope: not ours
          "unknown_key": "anything"}          # unscoped, not a host attribute: ignored
    assert f.passes(h, req(extra_specs=ok))
    for key, value in (("capabilities:hypervisor_type", "kvm"),
                       ("capabilities:cpu_info:topology:cores", ">= 16"),
                       ("capabilities:missing", "x"), ("hypervisor_type", "kvm"),
                       ("capabilities:cpu_info:arch:deeper", "x")):
        assert not f.passes(h, req(extra_specs={key: value})), key


def test_capabilities_on_per_host_values_escape_the_class_memo():
    f = ComputeCapabilitiesFilter()
    static = req(extra_specs={"capabilities:hypervisor_type": "fake"})
    dynamic = req(extra_specs={"capabilities:free_ram_mb": ">= 1024"})
    assert f.is_static(static) and not f.is_static(dynamic)
    assert f.passes(host(total_memory_mb=2048), dynamic)
    assert not f.passes(host(total_memory_mb=512), dynamic)


# -- aggregates -----------------------------------------------------------------------------------

def test_aggregate_instance_extra_specs_filter():
    f = AggregateInstanceExtraSpecsFilter()
    ssd = host(aggregates=[{"ssd": "true"}, {"ssd": "false,maybe", "gpus": "4"}])
    plain = host()
    assert not f.applies(req()) and not f.applies(req(extra_specs={"hw:x": "y"}))
    assert f.passes(ssd, req(extra_specs={"ssd": "true"}))
    assert f.passes(ssd, req(extra_specs={"aggregate_instance_extra_specs:ssd": "maybe"}))
    assert f.passes(ssd, req(extra_specs={"aggregate_instance_extra_specs:gpus": ">= 2"}))
    assert not f.passes(ssd, req(extra_specs={"ssd": "no"}))
    assert not f.passes(plain, req(extra_specs={"ssd": "true"}))
    assert f.passes(plain, req(extra_specs={"capabilities:x": "y"}))


def test_aggregate_multi_tenancy_isolation():
    f = AggregateMultiTenancyIsolation()
    isolated = host(aggregates=[{"filter_tenant_id": "p1,p2"}, {"filter_tenant_id3": "p3"}])
    assert f.passes(isolated, req(project_id="p2")) and f.passes(isolated, req(project_id="p3"))
    assert not f.passes(isolated, req(project_id="p4"))
    assert f.passes(host(aggregates=[{"other": "x"}]), req(project_id="p4"))


# -- groups and hints -------------------------------------------------------------------------------

def group(policy, hosts=(), max_per_host=1):
    return GroupInfo(uuid="g", policy=policy, max_per_host=max_per_host,
                     hosts=collections.Counter(hosts))


def test_server_group_affinity():
    f = ServerGroupAffinityFilter()
    assert not f.applies(req()) and not f.applies(req(group=group("anti-affinity")))
    empty = req(group=group("affinity"))
    assert f.applies(empty) and f.passes(host("h1"), empty)
    assert f.candidates(empty) is None
    placed = req(group=group("affinity", ["h2"]))
    assert not f.passes(host("h1"), placed) and f.passes(host("h2"), placed)
    assert f.candidates(placed) == {"h2"}


def test_server_group_anti_affinity_and_max_per_host():
    f = ServerGroupAntiAffinityFilter()
    r = req(group=group("anti-affinity", ["h1"]))
    assert f.applies(r) and not f.passes(host("h1"), r) and f.passes(host("h2"), r)
    two = req(group=group("anti-affinity", ["h1"], max_per_host=2))
    assert f.passes(host("h1"), two)
    assert not f.applies(req(group=group("soft-anti-affinity", ["h1"])))


def test_same_and_different_host():
    same, different = SameHostFilter(), DifferentHostFilter()
    assert not same.applies(req()) and not different.applies(req())
    r = req(same_host=frozenset({"h1"}), different_host=frozenset({"h2"}))
    assert same.passes(host("h1"), r) and not same.passes(host("h3"), r)
    assert different.passes(host("h1"), r) and not different.passes(host("h2"), r)
    assert same.candidates(r) == {"h1"}
    assert not same.passes(host("h1"), req(same_host=frozenset()))
