"""Resize and cold migrate (Nova's flow) on two fake hosts in process."""
from __future__ import annotations

from stratus.db import resizes as db_resizes
from stratus.db import services as db_services
from tests.cloud import InProcessCloud
from tests.unit.test_quotas import Tenant, public_image

HOSTS = ("host1", "host2")


def act(cloud, server_id, body, **kw):
    return cloud.compute("POST", f"/servers/{server_id}/action", body, **kw)


def host_of(server):
    return server["OS-EXT-SRV-ATTR:host"]


def node_hosts(cloud):
    """{host: allocated vcpus} from the allocations table."""
    with cloud.db.read() as s:
        from sqlalchemy import select

        from stratus.db.models import ComputeNode
        names = dict(s.execute(select(ComputeNode.id, ComputeNode.host)).all())
    return {names[n]: u["vcpus"] for n, u in db_services.allocation_usage(cloud.db).items()}


def test_resize_then_confirm(cloud):
    server = cloud.boot("grow", flavor="1")
    source = host_of(server)
    assert act(cloud, server["id"], {"resize": {"flavorRef": "3"}}).status_code == 202
    shown = cloud.wait_for(server["id"], "VERIFY_RESIZE")
    dest = host_of(shown)
    assert dest != source
    assert shown["flavor"]["id"] == "3"
    # Both hosts hold the instance's resources until it is confirmed.
    assert node_hosts(cloud) == {source: 1, dest: 2}
    driver_dest = cloud.computes[dest].manager.driver
    assert server["id"] in driver_dest.list_instances()
    assert server["id"] not in cloud.computes[source].manager.driver.list_instances()
    resp = act(cloud, server["id"], {"confirmResize": None})
    assert resp.status_code == 204, resp.get_data(as_text=True)
    shown = cloud.wait_for(server["id"], "ACTIVE")
    assert host_of(shown) == dest
    assert node_hosts(cloud) == {dest: 2}
    migrations = db_resizes.migrations_for_instance(cloud.db, server["id"])
    assert [(m["status"], m["migration_type"]) for m in migrations] == [("confirmed", "resize")]
    assert migrations[0]["source_compute"] == source and migrations[0]["dest_compute"] == dest


def test_resize_then_revert(cloud):
    server = cloud.boot("shrinkback", flavor="1")
    source = host_of(server)
    assert act(cloud, server["id"], {"resize": {"flavorRef": "3"}}).status_code == 202
    dest = host_of(cloud.wait_for(server["id"], "VERIFY_RESIZE"))
    assert act(cloud, server["id"], {"revertResize": None}).status_code == 202
    shown = cloud.wait_for(server["id"], "ACTIVE")
    assert host_of(shown) == source
    assert shown["flavor"]["id"] == "1"
    assert node_hosts(cloud) == {source: 1}
    assert server["id"] in cloud.computes[source].manager.driver.list_instances()
    assert server["id"] not in cloud.computes[dest].manager.driver.list_instances()
    assert db_resizes.migrations_for_instance(cloud.db, server["id"])[0]["status"] == "reverted"


def test_cold_migrate_keeps_the_flavor_and_changes_host(cloud):
    server = cloud.boot("mover", flavor="1")
    source = host_of(server)
    assert act(cloud, server["id"], {"migrate": None}).status_code == 202
    shown = cloud.wait_for(server["id"], "VERIFY_RESIZE")
    assert host_of(shown) != source and shown["flavor"]["id"] == "1"
    assert node_hosts(cloud) == {source: 1, host_of(shown): 1}
    assert act(cloud, server["id"], {"confirmResize": None}).status_code == 204
    shown = cloud.wait_for(server["id"], "ACTIVE")
    assert node_hosts(cloud) == {host_of(shown): 1}
    assert db_resizes.migrations_for_instance(cloud.db, server["id"])[0][
        "migration_type"] == "migration"


def test_stopped_instance_resizes_and_stays_stopped(cloud):
    server = cloud.boot("cold", flavor="1")
    assert act(cloud, server["id"], {"os-stop": None}).status_code == 202
    cloud.wait_for(server["id"], "SHUTOFF")
    assert act(cloud, server["id"], {"resize": {"flavorRef": "2"}}).status_code == 202
    cloud.wait_for(server["id"], "VERIFY_RESIZE")
    assert act(cloud, server["id"], {"confirmResize": None}).status_code == 204
    cloud.wait_for(server["id"], "SHUTOFF")


def test_bad_input_and_states(cloud):
    server = cloud.boot("picky", flavor="1")
    resp = act(cloud, server["id"], {"resize": {"flavorRef": "1"}})
    assert resp.status_code == 400
    assert "When resizing, instances must change flavor!" in resp.get_data(as_text=True)
    assert act(cloud, server["id"], {"resize": {"flavorRef": "nope"}}).status_code == 400
    assert act(cloud, server["id"], {"resize": {}}).status_code == 400
    assert act(cloud, server["id"], {"resize": {"flavorRef": "2", "x": 1}}).status_code == 400
    # Nothing to confirm or revert on an ACTIVE server.
    resp = act(cloud, server["id"], {"confirmResize": None})
    assert resp.status_code == 409 and "conflictingRequest" in resp.get_json()
    assert act(cloud, server["id"], {"revertResize": None}).status_code == 409
    assert act(cloud, server["id"], {"pause": None}).status_code == 202
    cloud.wait_for(server["id"], "PAUSED")
    resp = act(cloud, server["id"], {"resize": {"flavorRef": "2"}})
    assert resp.status_code == 409 and "conflictingRequest" in resp.get_json()
    assert act(cloud, server["id"], {"migrate": None}).status_code == 409


def test_no_other_host_leaves_the_server_active_with_a_fault(tmp_path):
    cloud = InProcessCloud(tmp_path, hosts=("host1",),
                           overrides={("scheduler", "host_state_max_age"): 0.0})
    try:
        server = cloud.boot("alone", flavor="1")
        assert act(cloud, server["id"], {"migrate": None}).status_code == 202
        migrations = []
        import time
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            migrations = db_resizes.migrations_for_instance(cloud.db, server["id"])
            if migrations and migrations[0]["status"] == "error":
                break
            time.sleep(0.02)
        assert migrations[0]["status"] == "error"
        shown = cloud.wait_for(server["id"], "ACTIVE")
        assert host_of(shown) == "host1"
        assert node_hosts(cloud) == {"host1": 1}
    finally:
        cloud.close()


def test_failed_finish_puts_error_and_frees_the_destination(cloud):
    server = cloud.boot("doomed", flavor="1")
    source = host_of(server)
    dest = next(h for h in HOSTS if h != source)

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    cloud.computes[dest].manager.driver.finish_migration = broken
    assert act(cloud, server["id"], {"resize": {"flavorRef": "3"}}).status_code == 202
    shown = cloud.wait_for(server["id"], "ERROR")
    assert "disk on fire" in shown["fault"]["message"]
    assert node_hosts(cloud) == {source: 1}
    assert db_resizes.migrations_for_instance(cloud.db, server["id"])[0]["status"] == "error"


def test_quota_refuses_a_bigger_flavor(cloud):
    tenant = Tenant(cloud, "resizer")
    resp = cloud.compute("PUT", f"/os-quota-sets/{tenant.project_id}",
                         {"quota_set": {"cores": 1}})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    image = public_image(cloud)
    resp = tenant.compute("POST", "/servers", {"server": {
        "name": "q", "flavorRef": "1", "imageRef": image}})
    assert resp.status_code == 202
    server_id = resp.get_json()["server"]["id"]
    cloud.wait_for(server_id, "ACTIVE")
    resp = tenant.compute("POST", f"/servers/{server_id}/action",
                          {"resize": {"flavorRef": "3"}})
    assert resp.status_code == 403, resp.get_data(as_text=True)
    assert "Quota exceeded for cores" in resp.get_data(as_text=True)
    # Same cores, more RAM: allowed.
    resp = tenant.compute("POST", f"/servers/{server_id}/action",
                          {"resize": {"flavorRef": "2"}})
    assert resp.status_code == 202, resp.get_data(as_text=True)
    cloud.wait_for(server_id, "VERIFY_RESIZE")


def test_policy_member_resizes_its_own_but_cannot_migrate(cloud):
    tenant = Tenant(cloud, "owner")
    image = public_image(cloud)
    resp = tenant.compute("POST", "/servers", {"server": {
        "name": "mine", "flavorRef": "1", "imageRef": image}})
    server_id = resp.get_json()["server"]["id"]
    cloud.wait_for(server_id, "ACTIVE")
    resp = tenant.compute("POST", f"/servers/{server_id}/action", {"migrate": None})
    assert resp.status_code == 403
    resp = tenant.compute("POST", f"/servers/{server_id}/action",
                          {"resize": {"flavorRef": "2"}})
    assert resp.status_code == 202
    cloud.wait_for(server_id, "VERIFY_RESIZE")
    resp = tenant.compute("POST", f"/servers/{server_id}/action", {"revertResize": None})
    assert resp.status_code == 202
    cloud.wait_for(server_id, "ACTIVE")
    other = Tenant(cloud, "stranger")
    resp = other.compute("POST", f"/servers/{server_id}/action",
                         {"resize": {"flavorRef": "2"}})
    assert resp.status_code == 404


def test_delete_during_verify_resize_frees_both_hosts(cloud):
    server = cloud.boot("gone", flavor="1")
    assert act(cloud, server["id"], {"resize": {"flavorRef": "3"}}).status_code == 202
    cloud.wait_for(server["id"], "VERIFY_RESIZE")
    assert cloud.compute("DELETE", f"/servers/{server['id']}").status_code == 204
    cloud.wait_for(server["id"], "DELETED")
    assert node_hosts(cloud) == {}
    assert db_resizes.migrations_for_instance(cloud.db, server["id"])[0]["status"] == "error"


def test_openstacksdk_shaped_bodies(cloud):
    """The bodies openstacksdk sends (resize_server, confirm_server_resize,
    revert_server_resize, migrate_server) are what the API takes."""
    server = cloud.boot("sdk", flavor="1")
    assert act(cloud, server["id"], {"resize": {"flavorRef": "2"}}).status_code == 202
    cloud.wait_for(server["id"], "VERIFY_RESIZE")
    assert act(cloud, server["id"], {"revertResize": None}).status_code == 202
    cloud.wait_for(server["id"], "ACTIVE")
    assert act(cloud, server["id"], {"migrate": None}).status_code == 202
    cloud.wait_for(server["id"], "VERIFY_RESIZE")
    assert act(cloud, server["id"], {"confirmResize": None}).status_code == 204
    cloud.wait_for(server["id"], "ACTIVE")
