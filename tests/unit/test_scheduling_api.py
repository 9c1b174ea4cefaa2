"""Scheduling through the API on the in-process cloud (three fake hosts):
forced hosts, scheduler hints, server groups, zones from aggregates, flavor
capabilities and image properties."""
from __future__ import annotations

from typing import Any

import pytest

from stratus.db import server_groups as db_groups
from stratus.db import services as db_services
from stratus.db.models import Aggregate, AggregateHost, AggregateMetadata
from stratus.identity import backend
from stratus.utils import new_uuid, utcnow
from tests.cloud import InProcessCloud

HOSTS = ("host1", "host2", "host3")
PATCH = "application/openstack-images-v2.1-json-patch"


@pytest.fixture
def image(cloud: InProcessCloud) -> str:
    image_id = cloud.create_image()
    resp = cloud.request("PATCH", f"/image/v2/images/{image_id}",
                         [{"op": "replace", "path": "/visibility", "value": "public"}],
                         headers={"Content-Type": PATCH})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return image_id


def boot(cloud: InProcessCloud, image: str, wait: str | None = "ACTIVE", token=None,
         hints: dict[str, Any] | None = None, **server: Any) -> Any:
    body: dict[str, Any] = {"server": {"name": "vm", "flavorRef": "1", "imageRef": image,
                                       **server}}
    if hints is not None:
        body["os:scheduler_hints"] = hints
    resp = cloud.compute("POST", "/servers", body, token=token)
    if wait is None:
        return resp
    assert resp.status_code == 202, resp.get_data(as_text=True)
    return cloud.wait_for(resp.get_json()["server"]["id"], wait)


def host_of(server: dict[str, Any]) -> str:
    return server["OS-EXT-SRV-ATTR:host"]


def disable(cloud: InProcessCloud, host: str) -> None:
    svc = db_services.service_get_all(cloud.db, host=host, binary="stratus-compute")[0]
    db_services.service_update(cloud.db, svc["id"], disabled=True)


def test_forced_host_bypasses_filters_for_admins_only(cloud, image):
    disable(cloud, "host2")
    server = boot(cloud, image, availability_zone="nova:host2")
    assert host_of(server) == "host2"
    server = boot(cloud, image, availability_zone="::host3")  # zone::node
    assert host_of(server) == "host3"
    project = backend.create_project(cloud.db, "demo")
    user = backend.create_user(cloud.db, "demo", "pw")
    backend.grant_role(cloud.db, user["id"], project["id"], "member")
    resp = boot(cloud, image, wait=None, token=cloud.token("demo", "pw", "demo"),
                availability_zone="nova:host1")
    assert resp.status_code == 403
    assert boot(cloud, image, wait=None, availability_zone="a:b:c:d").status_code == 400


def test_same_host_and_different_host_hints(cloud, image):
    first = boot(cloud, image)
    for _ in range(3):
        same = boot(cloud, image, hints={"same_host": [first["id"]]})
        assert host_of(same) == host_of(first)
    others = {host_of(boot(cloud, image, hints={"different_host": first["id"]}))
              for _ in range(4)}
    assert host_of(first) not in others


def test_anti_affinity_group_spreads_then_runs_out(cloud, image):
    group = db_groups.group_create(cloud.db, name="spread", policy="anti-affinity",
                                   project_id=None, user_id=None)
    servers = [boot(cloud, image, hints={"group": group["uuid"]}) for _ in HOSTS]
    assert sorted(host_of(s) for s in servers) == sorted(HOSTS)
    extra = boot(cloud, image, wait="ERROR", hints={"group": group["uuid"]})
    assert extra["fault"]["message"].startswith("No valid host was found")
    assert len(db_groups.group_get(cloud.db, group["uuid"])["members"]) == 4


def test_affinity_group_packs_a_multi_instance_request(cloud, image):
    group = db_groups.group_create(cloud.db, name="pack", policy="affinity",
                                   project_id=None, user_id=None)
    resp = cloud.compute("POST", "/servers", {
        "server": {"name": "pack", "flavorRef": "1", "imageRef": image, "min_count": 3},
        "os:scheduler_hints": {"group": group["uuid"]}})
    assert resp.status_code == 202
    servers = [s for s in cloud.compute("GET", "/servers/detail").get_json()["servers"]]
    hosts = {host_of(cloud.wait_for(s["id"], "ACTIVE")) for s in servers}
    assert len(hosts) == 1


def test_unknown_group_is_400(cloud, image):
    resp = boot(cloud, image, wait=None, hints={"group": new_uuid()})
    assert resp.status_code == 400
    assert "could not be found" in resp.get_json()["badRequest"]["message"]


def test_zone_from_an_aggregate(cloud, image):
    with cloud.db.write() as s:
        agg = Aggregate(uuid=new_uuid(), name="zone1", updated_at=utcnow())
        s.add(agg)
        s.flush()
        s.add_all([AggregateHost(aggregate_id=agg.id, host="host3"),
                   AggregateMetadata(aggregate_id=agg.id, key="availability_zone",
                                     value="az1")])
    for _ in range(3):
        server = boot(cloud, image, availability_zone="az1")
        assert host_of(server) == "host3" and server["OS-EXT-AZ:availability_zone"] == "az1"
    assert boot(cloud, image, wait=None, availability_zone="az9").status_code == 400


def test_flavor_capabilities_and_image_properties(cloud, image):
    resp = cloud.compute("POST", "/flavors", {"flavor": {
        "name": "kvm-only", "ram": 64, "vcpus": 1, "disk": 0}})
    flavor = resp.get_json()["flavor"]["id"]
    resp = cloud.compute("POST", f"/flavors/{flavor}/os-extra_specs",
                         {"extra_specs": {"capabilities:hypervisor_type": "kvm"}})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    failed = boot(cloud, image, wait="ERROR", flavorRef=flavor)
    assert failed["fault"]["message"].startswith("No valid host was found")
    resp = cloud.compute("PUT", f"/flavors/{flavor}/os-extra_specs/capabilities:hypervisor_type",
                         {"capabilities:hypervisor_type": "s== fake"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    boot(cloud, image, flavorRef=flavor)
    arm = cloud.create_image(name="arm")
    resp = cloud.request("PATCH", f"/image/v2/images/{arm}",
                         [{"op": "add", "path": "/hw_architecture", "value": "aarch64"}],
                         headers={"Content-Type": PATCH})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    boot(cloud, arm, wait="ERROR")


def test_weigher_multipliers_stack_or_spread(tmp_path):
    """A negative RAM multiplier stacks instances; a soft-anti-affinity group
    still spreads its members when its weigher outweighs it."""
    c = InProcessCloud(tmp_path, hosts=HOSTS, overrides={
        ("scheduler", "host_state_max_age"): 0.0, ("scheduler", "candidate_limit"): 3,
        ("filter_scheduler", "ram_weight_multiplier"): -1.0,
        ("filter_scheduler", "cpu_weight_multiplier"): 0.0,
        ("filter_scheduler", "disk_weight_multiplier"): 0.0,
        ("filter_scheduler", "io_ops_weight_multiplier"): 0.0,
        ("filter_scheduler", "soft_anti_affinity_weight_multiplier"): 10.0})
    try:
        image_id = c.create_image()
        stacked = {host_of(boot(c, image_id)) for _ in range(4)}
        assert len(stacked) == 1
        group = db_groups.group_create(c.db, name="soft", policy="soft-anti-affinity",
                                       project_id=None, user_id=None)
        spread = {host_of(boot(c, image_id, hints={"group": group["uuid"]}))
                  for _ in range(3)}
        assert spread == set(HOSTS)
    finally:
        c.close()
