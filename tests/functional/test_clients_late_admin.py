"""Unmodified openstacksdk (and python-openstackclient) against a cloud that
advertises microversion 2.75, on the admin resources of 2.41-2.61: services
and hypervisors by uuid (2.53), flavor descriptions (2.55) and extra specs
(2.61), aggregate uuids (2.41) and quota classes (2.50/2.57). The in-process
cloud is served over real HTTP on a thread; the clients negotiate their
versions as they do against Nova."""
from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.cloud import InProcessCloud
from tests.functional.clients import osc_in_process

def osc(served: tuple[InProcessCloud, str], capsys: pytest.CaptureFixture[str],
        *args: str) -> Any:
    return osc_in_process(served[1], capsys, *args)


def is_uuid(value: Any) -> bool:
    try:
        return str(uuid.UUID(str(value))) == value
    except ValueError:
        return False


def test_sdk_negotiates_2_75(conn: Any) -> None:
    assert conn.compute.get_endpoint_data().max_microversion == (2, 75)


def test_sdk_services_by_uuid(conn: Any) -> None:
    services = list(conn.compute.services())
    assert services and all(is_uuid(s.id) for s in services)
    compute = next(s for s in services if s.binary == "stratus-compute" and s.host == "host2")
    disabled = conn.compute.disable_service(compute, disabled_reason="sdk maintenance")
    assert (disabled.status, disabled.disabled_reason) == ("disabled", "sdk maintenance")
    shown = next(s for s in conn.compute.services(host="host2"))
    assert shown.id == compute.id and shown.status == "disabled"
    down = conn.compute.update_service_forced_down(compute, forced=True)
    assert down.is_forced_down is True and down.state == "down"
    conn.compute.update_service_forced_down(compute, forced=False)
    enabled = conn.compute.enable_service(compute)
    assert enabled.status == "enabled" and enabled.disabled_reason is None
    assert enabled.is_forced_down is False and enabled.state == "up"


def test_sdk_hypervisors_by_uuid(conn: Any) -> None:
    hypervisors = list(conn.compute.hypervisors(details=True))
    assert len(hypervisors) == 2 and all(is_uuid(h.id) for h in hypervisors)
    one = conn.compute.get_hypervisor(hypervisors[0].id)
    assert one.name == hypervisors[0].name and is_uuid(one.service_details["id"])
    matched = list(conn.compute.hypervisors(hypervisor_hostname_pattern=one.name))
    assert [h.id for h in matched] == [one.id]
    paged = [h.id for h in conn.compute.hypervisors(limit=1)]
    assert paged == [h.id for h in hypervisors]
    assert conn.compute.find_hypervisor(one.name).id == one.id


def test_sdk_flavor_description_and_extra_specs(conn: Any) -> None:
    flavor = conn.compute.create_flavor(name="sdk-desc", ram=64, vcpus=1, disk=1,
                                        description="made by the sdk")
    assert flavor.description == "made by the sdk"
    conn.compute.create_flavor_extra_specs(flavor, {"hw:cpu_policy": "dedicated"})
    # By id: the object above now holds extra_specs the sdk would send along,
    # which Nova's PUT schema refuses too.
    updated = conn.compute.update_flavor(flavor.id, description="changed")
    assert updated.description == "changed"
    fetched = conn.compute.get_flavor(flavor.id)
    assert fetched.description == "changed"
    assert fetched.extra_specs == {"hw:cpu_policy": "dedicated"}
    listed = {f.id: f for f in conn.compute.flavors(details=True)}
    assert listed[flavor.id].extra_specs == {"hw:cpu_policy": "dedicated"}
    conn.compute.delete_flavor(flavor)


def test_sdk_aggregate_uuid(conn: Any) -> None:
    agg = conn.compute.create_aggregate(name="sdk-agg")
    assert is_uuid(agg.uuid)
    assert conn.compute.get_aggregate(agg.id).uuid == agg.uuid
    conn.compute.delete_aggregate(agg)


def test_sdk_quota_class_sets(conn: Any) -> None:
    before = conn.compute.get_quota_class_set("default")
    assert before.cores == 20 and before.server_groups == 10
    updated = conn.compute.update_quota_class_set("default", cores=25)
    assert updated.cores == 25
    project = conn.current_project_id
    assert conn.compute.get_quota_set_defaults(project).cores == 25
    conn.compute.update_quota_class_set("default", cores=20)
    assert conn.compute.get_quota_class_set("default").cores == 20


def test_osc_admin_commands_at_late_versions(served: tuple[InProcessCloud, str],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    services = osc(served, capsys, "compute", "service", "list", "-f", "json")
    assert all(is_uuid(s["ID"]) for s in services)
    osc(served, capsys, "compute", "service", "set", "--disable", "--disable-reason",
        "osc", "host1", "stratus-compute")
    listed = osc(served, capsys, "compute", "service", "list", "--host", "host1",
                 "--service", "stratus-compute", "-f", "json")
    assert listed[0]["Status"] == "disabled"
    osc(served, capsys, "compute", "service", "set", "--enable", "host1", "nova-compute")
    osc(served, capsys, "compute", "service", "set", "--down", "host1", "nova-compute")
    listed = osc(served, capsys, "compute", "service", "list", "--host", "host1",
                 "--service", "nova-compute", "--long", "-f", "json")
    assert (listed[0]["Status"], listed[0]["State"], listed[0]["Forced Down"]) == (
        "enabled", "down", True)
    osc(served, capsys, "compute", "service", "set", "--up", "host1", "nova-compute")
    hypervisors = osc(served, capsys, "hypervisor", "list", "-f", "json")
    assert len(hypervisors) == 2 and all(is_uuid(h["ID"]) for h in hypervisors)
    shown = osc(served, capsys, "hypervisor", "show", hypervisors[0]["ID"], "-f", "json")
    assert shown["id"] == hypervisors[0]["ID"]
    created = osc(served, capsys, "flavor", "create", "--ram", "64", "--vcpus", "1",
                  "--disk", "1", "--description", "osc flavor", "osc-desc", "-f", "json")
    assert created["description"] == "osc flavor"
    osc(served, capsys, "flavor", "set", "--description", "osc changed", "osc-desc")
    assert osc(served, capsys, "flavor", "show", "osc-desc", "-f", "json")[
        "description"] == "osc changed"
    # Quota classes: the default class's limits are every project's defaults.
    # (``quota set --default`` writes the "default" quota class).
    osc(served, capsys, "quota", "set", "--default", "--cores", "31")
    shown = osc(served, capsys, "quota", "show", "--default", "--compute", "-f", "json")
    limits = shown if isinstance(shown, dict) else {q["Resource"]: q["Limit"] for q in shown}
    assert limits["cores"] == 31
    osc(served, capsys, "quota", "set", "--default", "--cores", "20")
