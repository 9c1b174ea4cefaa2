"""Microversion 2.74: ``host`` / ``hypervisor_hostname`` at server create
(Nova's requested destination), checked at 2.73 and at 2.74 on the
in-process cloud (three fake hosts, each with one node of its own name).
Every request names its version explicitly."""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from stratus.db.models import Instance
from tests.cloud import InProcessCloud
from tests.versioned import call, fault_message, module_cloud, module_image, role_token

HOSTS = ("host1", "host2", "host3")


cloud = module_cloud("mv274", HOSTS)
image = module_image("mv274")


def create(cloud: InProcessCloud, image: str, version: str, status: int,
           token: str | None = None, **server: Any) -> Any:
    body = {"server": {"name": server.pop("name", "dest"), "flavorRef": "1",
                       "imageRef": image, "networks": "none", **server}}
    return call(cloud, version, "POST", "/servers", body, status=status, token=token)


def server_count(cloud: InProcessCloud) -> int:
    """Instance rows, deleted ones too: a refused create leaves none."""
    with cloud.db.read() as s:
        return s.scalar(select(func.count()).select_from(Instance))


def created(cloud: InProcessCloud, resp: Any, status: str = "ACTIVE") -> dict[str, Any]:
    return cloud.wait_for(resp.get_json()["server"]["id"], status)


def delete(cloud: InProcessCloud, server: dict[str, Any]) -> None:
    cloud.compute("DELETE", f"/servers/{server['id']}")
    cloud.wait_for(server["id"], "DELETED")


def test_2_73_refuses_host_and_hypervisor_hostname(cloud: InProcessCloud, image: str) -> None:
    before = server_count(cloud)
    for extra in ({"host": "host2"}, {"hypervisor_hostname": "host2"}):
        resp = create(cloud, image, "2.73", 400, **extra)
        assert f"'{next(iter(extra))}' was unexpected" in fault_message(resp)
    assert server_count(cloud) == before


def test_2_74_schema(cloud: InProcessCloud, image: str) -> None:
    """Nova's parameter_types.hostname for both: 1-255 of [a-zA-Z0-9-._]."""
    before = server_count(cloud)
    for bad in ("", "a b", "host/1", "x" * 256, 3, None, ["host1"]):
        create(cloud, image, "2.74", 400, host=bad)
        create(cloud, image, "2.74", 400, hypervisor_hostname=bad)
    assert server_count(cloud) == before


@pytest.mark.parametrize("extra", [
    {"host": "host2"}, {"hypervisor_hostname": "host2"},
    {"host": "host2", "hypervisor_hostname": "host2"}])
def test_2_74_admin_creates_on_the_named_host(cloud: InProcessCloud, image: str,
                                              extra: dict[str, str]) -> None:
    # host2 is neither the first nor the last: several boots all land there.
    servers = [created(cloud, create(cloud, image, "2.74", 202, name=f"on-{i}", **extra))
               for i in range(3)]
    try:
        for server in servers:
            assert server["OS-EXT-SRV-ATTR:host"] == "host2"
            assert server["OS-EXT-SRV-ATTR:hypervisor_hostname"] == "host2"
    finally:
        for server in servers:
            delete(cloud, server)


@pytest.mark.parametrize(("extra", "message"), [
    ({"host": "nowhere"}, "Compute host nowhere could not be found."),
    ({"hypervisor_hostname": "nowhere"}, "Compute host nowhere could not be found."),
    # Both named: the node must be the host's; the message names the host.
    ({"host": "host1", "hypervisor_hostname": "host2"},
     "Compute host host1 could not be found."),
    ({"host": "nowhere", "hypervisor_hostname": "host2"},
     "Compute host nowhere could not be found."),
])
def test_2_74_unknown_host_or_node_is_a_400(cloud: InProcessCloud, image: str,
                                            extra: dict[str, str], message: str) -> None:
    before = server_count(cloud)
    resp = create(cloud, image, "2.74", 400, min_count=2, **extra)
    assert fault_message(resp) == message
    assert server_count(cloud) == before


def test_2_74_a_member_is_forbidden(cloud: InProcessCloud, image: str) -> None:
    token = role_token(cloud, "mv274-member", "member")
    before = server_count(cloud)
    for extra in ({"host": "host2"}, {"hypervisor_hostname": "host2"}):
        resp = create(cloud, image, "2.74", 403, token=token, **extra)
        assert "compute:servers:create:requested_destination" in fault_message(resp)
    assert server_count(cloud) == before
    # Without them the member still creates; at 2.74 an empty request is fine.
    server = created(cloud, create(cloud, image, "2.74", 202, token=token))
    cloud.compute("DELETE", f"/servers/{server['id']}", token=token)
    cloud.wait_for(server["id"], "DELETED")


def test_2_74_not_with_a_forced_host(cloud: InProcessCloud, image: str) -> None:
    before = server_count(cloud)
    for zone in ("nova:host1", "nova::host1", "nova:host1:host1"):
        resp = create(cloud, image, "2.74", 400, availability_zone=zone, host="host1")
        assert fault_message(resp) == (
            "One mechanism with host and/or hypervisor_hostname and another mechanism "
            "with zone:host:node are mutually exclusive.")
    assert server_count(cloud) == before
    # A plain zone goes with a requested host.
    server = created(cloud, create(cloud, image, "2.74", 202, availability_zone="nova",
                                   host="host3"))
    assert server["OS-EXT-SRV-ATTR:host"] == "host3"
    delete(cloud, server)


def test_2_74_a_disabled_host_is_no_valid_host(cloud: InProcessCloud, image: str) -> None:
    """Unlike availability_zone zone:host, the filters still run: the named
    host being disabled, the server goes to ERROR (no other host is tried)."""
    cloud.set_compute_disabled("host2", True)
    try:
        for extra in ({"host": "host2"}, {"hypervisor_hostname": "host2"}):
            server = created(cloud, create(cloud, image, "2.74", 202, **extra), "ERROR")
            assert server["fault"]["message"].startswith("No valid host was found")
            assert server["OS-EXT-SRV-ATTR:host"] is None
            delete(cloud, server)
    finally:
        cloud.set_compute_disabled("host2", False)


def test_2_74_multi_create_on_the_named_host(cloud: InProcessCloud, image: str) -> None:
    resp = create(cloud, image, "2.74", 202, name="multi", min_count=2, max_count=3,
                  host="host3", return_reservation_id=True)
    reservation = resp.get_json()["reservation_id"]
    listed = call(cloud, "2.74", "GET",
                  f"/servers/detail?reservation_id={reservation}").get_json()["servers"]
    assert len(listed) == 3
    servers = [cloud.wait_for(s["id"], "ACTIVE") for s in listed]
    try:
        assert {s["OS-EXT-SRV-ATTR:host"] for s in servers} == {"host3"}
    finally:
        for server in servers:
            delete(cloud, server)
