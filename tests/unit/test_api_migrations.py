"""``GET /os-migrations`` (2.1 and 2.23 bodies, filters, admin only) and
``GET /servers/{id}/migrations[/{mid}]`` (2.23): two fake hosts in process."""
from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import select

from stratus.db.models import Flavor
from tests.unit.test_quotas import Tenant, public_image
from tests.unit.test_resize import HOSTS, act, host_of

V2_1_KEYS = {"id", "source_node", "dest_node", "source_compute", "dest_compute",
             "dest_host", "status", "instance_uuid", "old_instance_type_id",
             "new_instance_type_id", "created_at", "updated_at"}
SERVER_MIGRATION_KEYS = {"created_at", "dest_compute", "dest_host", "dest_node", "id",
                         "server_uuid", "source_compute", "source_node", "status",
                         "updated_at", "disk_processed_bytes", "disk_remaining_bytes",
                         "disk_total_bytes", "memory_processed_bytes",
                         "memory_remaining_bytes", "memory_total_bytes"}
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")
V2_23 = {"OpenStack-API-Version": "compute 2.23"}


def migrations(cloud, query="", **kw):
    resp = cloud.compute("GET", f"/os-migrations{query}", **kw)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()["migrations"]


@pytest.fixture
def moved(cloud):
    """A resize confirmed (flavor 1 -> 3) and a cold migration reverted."""
    resized = cloud.boot("resized", flavor="1")
    assert act(cloud, resized["id"], {"resize": {"flavorRef": "3"}}).status_code == 202
    cloud.wait_for(resized["id"], "VERIFY_RESIZE")
    assert act(cloud, resized["id"], {"confirmResize": None}).status_code == 204
    cloud.wait_for(resized["id"], "ACTIVE")
    migrated = cloud.boot("migrated", flavor="1")
    assert act(cloud, migrated["id"], {"migrate": None}).status_code == 202
    cloud.wait_for(migrated["id"], "VERIFY_RESIZE")
    assert act(cloud, migrated["id"], {"revertResize": None}).status_code == 202
    cloud.wait_for(migrated["id"], "ACTIVE")
    return resized, migrated


def test_v2_1_body_is_novas(cloud, moved):
    resized, migrated = moved
    listed = migrations(cloud)
    assert [m["instance_uuid"] for m in listed] == [migrated["id"], resized["id"]]  # newest first
    for m in listed:
        assert set(m) == V2_1_KEYS
        assert isinstance(m["id"], int)
        assert TIME.match(m["created_at"]) and TIME.match(m["updated_at"])
    first = listed[1]
    assert first["status"] == "confirmed"
    assert first["source_compute"] == host_of(resized)
    assert first["dest_compute"] != first["source_compute"]
    assert first["dest_node"] == first["dest_compute"]  # the fake node is named after its host
    with cloud.db.read() as s:  # the flavors' integer ids, as Nova's instance_type_id
        ids = dict(s.execute(select(Flavor.flavorid, Flavor.id)).all())
    assert (first["old_instance_type_id"], first["new_instance_type_id"]) == (ids["1"], ids["3"])
    assert listed[0]["status"] == "reverted"
    assert listed[0]["old_instance_type_id"] == listed[0]["new_instance_type_id"]


def test_filters(cloud, moved):
    resized, migrated = moved
    assert [m["instance_uuid"] for m in migrations(cloud, f"?instance_uuid={resized['id']}")] \
        == [resized["id"]]
    assert [m["status"] for m in migrations(cloud, "?status=reverted")] == ["reverted"]
    assert migrations(cloud, "?status=error") == []
    assert [m["instance_uuid"] for m in migrations(cloud, "?migration_type=migration")] == \
        [migrated["id"]]
    source = host_of(resized)
    by_source = migrations(cloud, f"?source_compute={source}")
    assert by_source and all(m["source_compute"] == source for m in by_source)
    for host in HOSTS:  # host matches either end: both migrations moved between the two
        assert len(migrations(cloud, f"?host={host}")) == 2
    assert migrations(cloud, "?host=nowhere") == []
    assert len(migrations(cloud, "?unknown=1")) == 2  # Nova's schema lets others through


def test_admin_only(cloud, moved):
    tenant = Tenant(cloud, "member")
    resp = tenant.compute("GET", "/os-migrations")
    assert resp.status_code == 403
    assert resp.get_json()["forbidden"]["message"] == \
        "Policy doesn't allow os_compute_api:os-migrations:index to be performed."
    image = public_image(cloud)
    resp = tenant.compute("POST", "/servers", {"server": {
        "name": "mine", "flavorRef": "1", "imageRef": image}})
    server_id = resp.get_json()["server"]["id"]
    cloud.wait_for(server_id, "ACTIVE")
    resp = tenant.compute("GET", f"/servers/{server_id}/migrations", headers=V2_23)
    assert resp.status_code == 403


def test_v2_23_types_links_and_server_migrations(cloud, monkeypatch, moved):
    resized, _migrated = moved
    listed = migrations(cloud, headers=V2_23)
    assert {m["migration_type"] for m in listed} == {"resize", "migration"}
    assert all(set(m) == V2_1_KEYS | {"migration_type"} for m in listed)  # none in progress
    # A resize held before the destination finishes: in progress.
    server = cloud.boot("moving", flavor="1")
    dest = cloud.computes[next(h for h in HOSTS if h != host_of(server))].manager
    hold = threading.Event()
    original = dest.finish_resize
    monkeypatch.setattr(dest, "finish_resize",
                        lambda *a, **kw: (hold.wait(10), original(*a, **kw)))
    assert act(cloud, server["id"], {"resize": {"flavorRef": "2"}}).status_code == 202
    try:
        current: dict = {}
        for _ in range(500):  # the conductor writes the migration after the 202
            listed = migrations(cloud, f"?instance_uuid={server['id']}", headers=V2_23)
            if listed and listed[0]["status"] == "post-migrating":
                [current] = listed
                break
            threading.Event().wait(0.02)
        assert current.get("status") == "post-migrating"
        mid = current["id"]
        hrefs = [link["href"] for link in current["links"]]
        assert hrefs[0].endswith(f"/v2.1/servers/{server['id']}/migrations/{mid}")
        assert hrefs[1].endswith(f"/compute/servers/{server['id']}/migrations/{mid}")
        resp = cloud.compute("GET", f"/servers/{server['id']}/migrations", headers=V2_23)
        assert resp.status_code == 200
        [shown] = resp.get_json()["migrations"]
        assert set(shown) == SERVER_MIGRATION_KEYS
        assert shown["id"] == mid and shown["server_uuid"] == server["id"]
        assert shown["memory_total_bytes"] is None
        resp = cloud.compute("GET", f"/servers/{server['id']}/migrations/{mid}",
                             headers=V2_23)
        assert resp.status_code == 200 and resp.get_json()["migration"] == shown
        # Not before 2.23.
        assert cloud.compute("GET", f"/servers/{server['id']}/migrations").status_code == 404
    finally:
        hold.set()
    cloud.wait_for(server["id"], "VERIFY_RESIZE")
    # Finished: no longer in progress.
    resp = cloud.compute("GET", f"/servers/{server['id']}/migrations", headers=V2_23)
    assert resp.get_json() == {"migrations": []}
    resp = cloud.compute("GET", f"/servers/{server['id']}/migrations/{mid}", headers=V2_23)
    assert resp.status_code == 404
    resp = cloud.compute("GET", f"/servers/{resized['id']}/migrations", headers=V2_23)
    assert resp.get_json() == {"migrations": []}
