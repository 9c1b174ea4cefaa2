"""createBackup (os-create-backup) on the in-process cloud: the backup image,
the answer before and from 2.45, the rotation on the compute host, bad
bodies, states and projects."""
from __future__ import annotations

import orjson
import pytest

from tests.tenants import Tenants
from tests.unit.test_snapshot import InProcessImageAPI, wait_image
from tests.versioned import at, call


@pytest.fixture
def images(cloud):
    api = InProcessImageAPI(cloud)
    cloud.computes["host1"].manager.image_api = api
    return api


def backup(cloud, server_id, body, **kw):
    return cloud.compute("POST", f"/servers/{server_id}/action", {"createBackup": body}, **kw)


def backup_and_wait(cloud, server_id, name, backup_type="daily", rotation=2):
    """A backup at 2.45 (the id in the body), waited for until the server's
    task is over (the rotation is done by then)."""
    resp = backup(cloud, server_id, {"name": name, "backup_type": backup_type,
                                     "rotation": rotation}, headers=at("2.45"))
    assert resp.status_code == 202, resp.get_data(as_text=True)
    cloud.wait_for(server_id, "ACTIVE")
    return resp.get_json()["image_id"]


def backups_of(cloud, server_id, backup_type=None):
    """Names of the server's images with image_type=backup (and that type), newest first."""
    query = f"instance_uuid={server_id}&image_type=backup&sort_key=created_at&sort_dir=desc"
    if backup_type:
        query += f"&backup_type={backup_type}"
    resp = cloud.request("GET", f"/image/v2/images?{query}")
    return [i["name"] for i in resp.get_json()["images"]]


def all_image_ids(cloud):
    return {i["id"] for i in cloud.request("GET", "/image/v2/images").get_json()["images"]}


def test_backup_image_properties_location_and_instance_action(cloud, images):
    base = cloud.create_image("base")
    server = cloud.boot("backed", image=base)
    resp = backup(cloud, server["id"], {"name": "nightly", "backup_type": "daily",
                                        "rotation": 1, "metadata": {"purpose": "test"}})
    assert resp.status_code == 202, resp.get_data(as_text=True)
    assert resp.get_data() == b""
    location = resp.headers["Location"]
    assert "/compute/v2.1/images/" in location  # Nova: the compute API's image URL
    image = wait_image(cloud, location.rsplit("/", 1)[1], "active")
    shown = cloud.wait_for(server["id"], "ACTIVE")
    assert shown["OS-EXT-STS:task_state"] is None
    assert image["name"] == "nightly" and image["visibility"] == "private"
    assert image["image_type"] == "backup" and image["backup_type"] == "daily"
    assert image["instance_uuid"] == server["id"] and image["base_image_ref"] == base
    assert image["purpose"] == "test"
    actions = cloud.compute("GET", f"/servers/{server['id']}/os-instance-actions").get_json()
    assert [a["action"] for a in actions["instanceActions"]][0] == "createBackup"
    request_id = actions["instanceActions"][0]["request_id"]
    action = cloud.compute("GET", f"/servers/{server['id']}/os-instance-actions/{request_id}"
                           ).get_json()["instanceAction"]
    assert [e["event"] for e in action["events"]] == ["compute_backup_instance"]
    assert action["events"][0]["result"] == "Success"


def test_image_id_in_the_body_from_2_45(cloud, images):
    server = cloud.boot("versioned")
    body = {"createBackup": {"name": "b", "backup_type": "daily", "rotation": "3"}}
    old = call(cloud, "2.44", "POST", f"/servers/{server['id']}/action", body, status=202)
    assert old.get_data() == b"" and "Location" in old.headers
    cloud.wait_for(server["id"], "ACTIVE")
    new = call(cloud, "2.45", "POST", f"/servers/{server['id']}/action", body, status=202)
    assert "Location" not in new.headers
    wait_image(cloud, new.get_json()["image_id"], "active")
    cloud.wait_for(server["id"], "ACTIVE")


def test_rotation_keeps_the_newest_of_that_type_only(cloud, images):
    server = cloud.boot("rotated")
    other = cloud.boot("neighbour")
    backup_and_wait(cloud, other["id"], "other-1", rotation=1)
    backup_and_wait(cloud, server["id"], "weekly-1", backup_type="weekly", rotation=1)
    snap = cloud.compute("POST", f"/servers/{server['id']}/action",
                         {"createImage": {"name": "snap"}}, headers=at("2.45"))
    wait_image(cloud, snap.get_json()["image_id"], "active")
    cloud.wait_for(server["id"], "ACTIVE")
    for name in ("daily-1", "daily-2"):
        backup_and_wait(cloud, server["id"], name)
    assert backups_of(cloud, server["id"], "daily") == ["daily-2", "daily-1"]
    backup_and_wait(cloud, server["id"], "daily-3")
    assert backups_of(cloud, server["id"], "daily") == ["daily-3", "daily-2"]
    # Other types, plain snapshots and other servers' backups are untouched.
    assert backups_of(cloud, server["id"], "weekly") == ["weekly-1"]
    assert backups_of(cloud, other["id"]) == ["other-1"]
    assert cloud.request("GET", f"/image/v2/images/{snap.get_json()['image_id']}"
                         ).status_code == 200
    backup_and_wait(cloud, server["id"], "daily-4", rotation=1)
    assert backups_of(cloud, server["id"], "daily") == ["daily-4"]


def test_rotation_zero_keeps_no_backup_and_sends_no_location(cloud, images):
    server = cloud.boot("zero")
    backup_and_wait(cloud, server["id"], "daily-1")
    resp = backup(cloud, server["id"], {"name": "gone", "backup_type": "daily",
                                        "rotation": 0})
    assert resp.status_code == 202 and "Location" not in resp.headers
    cloud.wait_for(server["id"], "ACTIVE")
    assert backups_of(cloud, server["id"]) == []


@pytest.mark.parametrize("body", [
    {"backup_type": "daily", "rotation": 1},
    {"name": "b", "rotation": 1},
    {"name": "b", "backup_type": "daily"},
    {"name": "b", "backup_type": "daily", "rotation": -1},
    {"name": "b", "backup_type": "daily", "rotation": "-1"},
    {"name": "b", "backup_type": "daily", "rotation": ""},
    {"name": "b", "backup_type": "daily", "rotation": "two"},
    {"name": "b", "backup_type": "daily", "rotation": 1.5},
    {"name": "b", "backup_type": "daily", "rotation": 1, "extra": 1},
    {"name": "b", "backup_type": "daily", "rotation": 1, "metadata": "x"},
    {"name": "", "backup_type": "daily", "rotation": 1},
    {"name": " b", "backup_type": "daily", "rotation": 1},
    {"name": "b" * 256, "backup_type": "daily", "rotation": 1},
    {"name": "b", "backup_type": 1, "rotation": 1},
    "go",
])
def test_bad_bodies_are_400_and_create_nothing(cloud, images, body):
    server = cloud.boot("strict")
    before = all_image_ids(cloud)
    resp = backup(cloud, server["id"], body)
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert "badRequest" in resp.get_json()
    assert all_image_ids(cloud) == before
    shown = cloud.compute("GET", f"/servers/{server['id']}").get_json()["server"]
    assert shown["OS-EXT-STS:task_state"] is None


def test_unknown_server_is_404_and_wrong_state_409(cloud, images):
    body = {"name": "b", "backup_type": "daily", "rotation": 1}
    assert backup(cloud, "00000000-0000-0000-0000-000000000000", body).status_code == 404
    server = cloud.boot("broken")
    cloud.compute("POST", f"/servers/{server['id']}/action", {"os-resetState": {"state": "error"}})
    before = all_image_ids(cloud)
    resp = backup(cloud, server["id"], body)
    assert resp.status_code == 409, resp.get_data(as_text=True)
    assert "Cannot 'createBackup' instance" in resp.get_json()["conflictingRequest"]["message"]
    assert all_image_ids(cloud) == before


def test_stopped_and_paused_servers_can_be_backed_up(cloud, images):
    server = cloud.boot("resting")
    cloud.compute("POST", f"/servers/{server['id']}/action", {"os-stop": None})
    cloud.wait_for(server["id"], "SHUTOFF")
    backup_and_wait_status(cloud, server["id"], "SHUTOFF")
    other = cloud.boot("paused")
    cloud.compute("POST", f"/servers/{other['id']}/action", {"pause": None})
    cloud.wait_for(other["id"], "PAUSED")
    backup_and_wait_status(cloud, other["id"], "PAUSED")


def backup_and_wait_status(cloud, server_id, status):
    resp = backup(cloud, server_id, {"name": "b", "backup_type": "daily", "rotation": 1},
                  headers=at("2.45"))
    assert resp.status_code == 202, resp.get_data(as_text=True)
    wait_image(cloud, resp.get_json()["image_id"], "active")
    cloud.wait_for(server_id, status)


def test_projects_and_roles(cloud, images):
    tenants = Tenants(cloud)
    image = tenants.image("a-member", "a-image")
    server = tenants.boot("a-member", "a-server", image)
    body = {"createBackup": {"name": "b", "backup_type": "daily", "rotation": 1}}
    path = f"/servers/{server['id']}/action"
    # Another project's server is not found; a reader may not back up.
    assert tenants.compute("b-member", "POST", path, body).status_code == 404
    assert tenants.compute("a-reader", "POST", path, body).status_code == 403
    # A locked server: 409 for its members, an admin may.
    assert tenants.compute("a-member", "POST", path, {"lock": None}).status_code == 202
    assert tenants.compute("a-member", "POST", path, body).status_code == 409
    resp = tenants.compute("admin", "POST", path, body, headers=at("2.45"))
    assert resp.status_code == 202, resp.get_data(as_text=True)
    image_id = resp.get_json()["image_id"]
    shown = wait_image(cloud, image_id, "active")
    cloud.wait_for(server["id"], "ACTIVE")
    assert shown["owner"] == cloud.project_id()  # the requester's project, as Nova
    # The member's own backups rotate among the project's images only.
    assert tenants.compute("admin", "POST", path, {"unlock": None}).status_code == 202
    first = backup_as(tenants, "a-member", server["id"], body)
    assert cloud.request("GET", f"/image/v2/images/{first}").status_code == 200
    second = backup_as(tenants, "a-member", server["id"], body)
    assert cloud.request("GET", f"/image/v2/images/{first}").status_code == 404
    for kept in (second, image_id):
        assert cloud.request("GET", f"/image/v2/images/{kept}").status_code == 200


def backup_as(tenants, user, server_id, body):
    resp = tenants.compute(user, "POST", f"/servers/{server_id}/action", body,
                           headers=at("2.45"))
    assert resp.status_code == 202, resp.get_data(as_text=True)
    tenants.cloud.wait_for(server_id, "ACTIVE")
    return resp.get_json()["image_id"]


def test_another_projects_look_alike_images_are_not_rotated(cloud, images):
    """Images of another project that claim to be the server's backups count
    for nothing: they neither push its own backups out nor get deleted."""
    tenants = Tenants(cloud)
    server = tenants.boot("a-member", "a-server", tenants.image("a-member", "a-image"))
    fake_id = tenants.image("b-member", "fake-backup")
    resp = tenants.request("b-member", "PATCH", f"/image/v2/images/{fake_id}", raw=orjson.dumps(
        [{"op": "add", "path": f"/{k}", "value": v} for k, v in (
            ("instance_uuid", server["id"]), ("image_type", "backup"),
            ("backup_type", "daily"))]),
        headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = {"createBackup": {"name": "real", "backup_type": "daily", "rotation": 1}}
    resp = tenants.compute("a-member", "POST", f"/servers/{server['id']}/action", body,
                           headers=at("2.45"))
    assert resp.status_code == 202
    real = wait_image(cloud, resp.get_json()["image_id"], "active")
    cloud.wait_for(server["id"], "ACTIVE")
    assert cloud.request("GET", f"/image/v2/images/{real['id']}").status_code == 200
    assert cloud.request("GET", f"/image/v2/images/{fake_id}").status_code == 200


def test_metadata_quota_before_2_39_and_metadata_the_image_service_refuses(cloud, images):
    server = cloud.boot("meta")
    before = all_image_ids(cloud)
    many = {"createBackup": {"name": "b", "backup_type": "daily", "rotation": 1,
                             "metadata": {str(i): "v" for i in range(200)}}}
    path = f"/servers/{server['id']}/action"
    assert call(cloud, "2.38", "POST", path, many, status=403)
    # Nova's schema takes any object; the image service refuses what it cannot store.
    bad = backup(cloud, server["id"], {"name": "b", "backup_type": "daily", "rotation": 1,
                                       "metadata": {"k": 1}})
    assert bad.status_code == 400 and "badRequest" in bad.get_json()
    assert all_image_ids(cloud) == before
    resp = call(cloud, "2.39", "POST", path, many, status=202)
    wait_image(cloud, resp.headers["Location"].rsplit("/", 1)[1], "active")
    cloud.wait_for(server["id"], "ACTIVE")


def test_image_client_lists_every_page(monkeypatch):
    """The compute host's ImageClient.list_images follows Glance's ``next``."""
    import io
    import json
    from urllib.parse import parse_qs, urlsplit

    from stratus.image.client import ImageClient

    client = ImageClient("http://identity", "admin", "pw", "admin",
                         image_endpoint="http://image")
    pages = {None: {"images": [{"id": "a"}, {"id": "b"}],
                    "next": "/v2/images?owner=p&marker=b"},
             "b": {"images": [{"id": "c"}]}}
    paths = []

    def fake_open(path, image_id, *args, **kwargs):
        paths.append(path)
        marker = parse_qs(urlsplit(path).query).get("marker", [None])[0]
        return io.BytesIO(json.dumps(pages[marker]).encode())

    monkeypatch.setattr(client, "_open", fake_open)
    found = client.list_images({"owner": "p", "image_type": "backup"})
    assert [i["id"] for i in found] == ["a", "b", "c"]
    query = parse_qs(urlsplit(paths[0]).query)
    assert query == {"owner": ["p"], "image_type": ["backup"], "sort_key": ["created_at"],
                     "sort_dir": ["desc"]}
