"""Compute's image proxy (``/v2.1/images``, image metadata) and boot-time image
visibility, on the in-process cloud with two projects."""
from __future__ import annotations

from typing import Any

import pytest

from stratus.identity import backend
from tests.cloud import InProcessCloud

PATCH_TYPE = "application/openstack-images-v2.1-json-patch"
BASE = "http://127.0.0.1:8774"


@pytest.fixture
def two(cloud: InProcessCloud) -> InProcessCloud:
    for name in ("alice", "bob"):
        project = backend.create_project(cloud.db, name)
        user = backend.create_user(cloud.db, name, "pw")
        backend.grant_role(cloud.db, user["id"], project["id"], "member")
    return cloud


def tok(cloud: InProcessCloud, who: str) -> str:
    return cloud.token() if who == "admin" else cloud.token(who, "pw", who)


def make_image(cloud: InProcessCloud, who: str, data: bytes = b"d" * 1024,
               **values: Any) -> dict[str, Any]:
    body = {"name": "img", "disk_format": "raw", "container_format": "bare", **values}
    resp = cloud.request("POST", "/image/v2/images", body, token=tok(cloud, who))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    image = resp.get_json()
    if data is not None:
        resp = cloud.request("PUT", f"/image/v2/images/{image['id']}/file", raw=data,
                             token=tok(cloud, who),
                             headers={"Content-Type": "application/octet-stream"})
        assert resp.status_code == 204
    return image


def test_show_detail_and_list(two: InProcessCloud) -> None:
    c = two
    image = make_image(c, "alice", name="cirros", min_ram=64, min_disk=1,
                       os_distro="cirros", instance_uuid="11111111-2222-3333-4444-555555555555",
                       auto_disk_config="true")
    queued = make_image(c, "alice", data=None, name="queued")
    resp = c.compute("GET", f"/images/{image['id']}", token=tok(c, "alice"))
    assert resp.status_code == 200
    shown = resp.get_json()["image"]
    iid = image["id"]
    assert shown == {
        "id": iid, "name": "cirros", "minRam": 64, "minDisk": 1,
        "metadata": {"os_distro": "cirros",
                     "instance_uuid": "11111111-2222-3333-4444-555555555555",
                     "auto_disk_config": "true"},
        "created": image["created_at"], "updated": shown["updated"],
        "status": "ACTIVE", "progress": 100, "OS-EXT-IMG-SIZE:size": 1024,
        "OS-DCF:diskConfig": "AUTO",
        "links": [
            {"rel": "self", "href": f"{BASE}/compute/v2.1/images/{iid}"},
            {"rel": "bookmark", "href": f"{BASE}/compute/images/{iid}"},
            {"rel": "alternate", "type": "application/vnd.openstack.image",
             "href": f"{BASE}/image/images/{iid}"}],
        "server": {"id": "11111111-2222-3333-4444-555555555555", "links": [
            {"rel": "self",
             "href": f"{BASE}/compute/v2.1/servers/11111111-2222-3333-4444-555555555555"},
            {"rel": "bookmark",
             "href": f"{BASE}/compute/servers/11111111-2222-3333-4444-555555555555"}]},
    }
    q = c.compute("GET", f"/images/{queued['id']}", token=tok(c, "alice")).get_json()["image"]
    assert (q["status"], q["progress"], q["OS-EXT-IMG-SIZE:size"]) == ("SAVING", 25, None)

    listed = c.compute("GET", "/images", token=tok(c, "alice")).get_json()
    assert [set(i) for i in listed["images"]] == [{"id", "name", "links"}] * 2
    assert {i["id"] for i in listed["images"]} == {iid, queued["id"]}
    detail = c.compute("GET", "/images/detail?status=ACTIVE", token=tok(c, "alice")).get_json()
    assert [i["id"] for i in detail["images"]] == [iid]
    for query, expected in (("name=cirros", [iid]), ("minRam=64", [iid]),
                            ("minDisk=2", []), ("type=snapshot", []),
                            ("property-os_distro=cirros", [iid]),
                            ("property-os_distro=ubuntu", []),
                            ("server=11111111-2222-3333-4444-555555555555", [iid]),
                            ("changes-since=2000-01-01T00:00:00Z", None)):
        got = c.compute("GET", f"/images/detail?{query}", token=tok(c, "alice")).get_json()
        ids = [i["id"] for i in got["images"]]
        assert ids == expected if expected is not None else set(ids) == {iid, queued["id"]}
    page = c.compute("GET", "/images/detail?limit=1", token=tok(c, "alice")).get_json()
    assert len(page["images"]) == 1
    nxt = page["images_links"][0]
    assert nxt["rel"] == "next" and "marker=" in nxt["href"]
    assert nxt["href"].startswith(f"{BASE}/compute/v2.1/images/detail?")
    marker = page["images"][0]["id"]
    rest = c.compute("GET", f"/images/detail?limit=1&marker={marker}",
                     token=tok(c, "alice")).get_json()
    assert [i["id"] for i in rest["images"]] != [marker]
    assert c.compute("GET", "/images?minRam=x", token=tok(c, "alice")).status_code == 400
    bad_marker = c.compute("GET", "/images?marker=00000000-0000-0000-0000-000000000000",
                           token=tok(c, "alice"))
    assert bad_marker.status_code == 400


def test_visibility_through_the_proxy(two: InProcessCloud) -> None:
    c = two
    private = make_image(c, "alice", name="alice-private", visibility="private")
    community = make_image(c, "alice", name="alice-community", visibility="community")
    public = make_image(c, "admin", name="public", visibility="public")
    bob = tok(c, "bob")
    names = {i["name"] for i in c.compute("GET", "/images", token=bob).get_json()["images"]}
    assert names == {"public"}
    resp = c.compute("GET", f"/images/{private['id']}", token=bob)
    assert resp.status_code == 404
    assert resp.get_json() == {"itemNotFound": {"code": 404, "message": "Image not found."}}
    assert c.compute("GET", f"/images/{community['id']}", token=bob).status_code == 200
    assert c.compute("GET", f"/images/{public['id']}", token=bob).status_code == 200
    # Not the owner: no metadata changes, no delete.
    denied = c.compute("DELETE", f"/images/{public['id']}", token=bob)
    assert denied.status_code == 403
    assert denied.get_json() == {"forbidden": {
        "code": 403, "message": "You are not allowed to delete the image."}}
    assert c.compute("DELETE", f"/images/{private['id']}", token=bob).status_code == 404
    assert c.compute("POST", f"/images/{community['id']}/metadata",
                     {"metadata": {"a": "b"}}, token=bob).status_code == 403
    # Shared with bob through a member: visible once accepted.
    shared = make_image(c, "alice", name="alice-shared")
    assert c.request("POST", f"/image/v2/images/{shared['id']}/members",
                     {"member": backend_project_id(c, "bob")},
                     token=tok(c, "alice")).status_code == 200
    assert c.compute("GET", f"/images/{shared['id']}", token=bob).status_code == 200
    assert "alice-shared" not in {
        i["name"] for i in c.compute("GET", "/images", token=bob).get_json()["images"]}
    c.request("PUT", f"/image/v2/images/{shared['id']}/members/"
                     f"{backend_project_id(c, 'bob')}", {"status": "accepted"}, token=bob)
    assert "alice-shared" in {
        i["name"] for i in c.compute("GET", "/images", token=bob).get_json()["images"]}


def backend_project_id(c: InProcessCloud, name: str) -> str:
    resp = c.request("GET", "/identity/v3/auth/tokens", token=tok(c, name),
                     headers={"X-Subject-Token": tok(c, name)})
    return resp.get_json()["token"]["project"]["id"]


def test_delete(two: InProcessCloud) -> None:
    c = two
    image = make_image(c, "alice")
    protected = make_image(c, "alice", protected=True)
    alice = tok(c, "alice")
    assert c.compute("DELETE", f"/images/{protected['id']}", token=alice).status_code == 403
    assert c.compute("DELETE", f"/images/{image['id']}", token=alice).status_code == 204
    assert c.compute("GET", f"/images/{image['id']}", token=alice).status_code == 404
    assert c.compute("DELETE", f"/images/{image['id']}", token=alice).status_code == 404
    assert c.request("GET", f"/image/v2/images/{image['id']}",
                     token=alice).status_code == 404


def test_image_metadata(two: InProcessCloud) -> None:
    c = two
    image = make_image(c, "alice", os_distro="ubuntu")
    alice = tok(c, "alice")
    url = f"/images/{image['id']}/metadata"
    assert c.compute("GET", url, token=alice).get_json() == {"metadata": {"os_distro": "ubuntu"}}
    merged = c.compute("POST", url, {"metadata": {"os_version": "24.04"}}, token=alice)
    assert merged.status_code == 200
    assert merged.get_json() == {"metadata": {"os_distro": "ubuntu", "os_version": "24.04"}}
    assert c.compute("GET", f"{url}/os_version", token=alice).get_json() == {
        "meta": {"os_version": "24.04"}}
    assert c.compute("GET", f"{url}/nope", token=alice).status_code == 404
    one = c.compute("PUT", f"{url}/hw_disk_bus", {"meta": {"hw_disk_bus": "virtio"}},
                    token=alice)
    assert one.status_code == 200 and one.get_json() == {"meta": {"hw_disk_bus": "virtio"}}
    assert c.compute("PUT", f"{url}/a", {"meta": {"b": "c"}}, token=alice).status_code == 400
    assert c.compute("PUT", f"{url}/a", {"meta": {"a": "1", "b": "2"}},
                     token=alice).status_code == 400
    assert c.compute("POST", url, {"metadata": {"k": 1}}, token=alice).status_code == 400
    # Glance sees the same properties.
    glance = c.request("GET", f"/image/v2/images/{image['id']}", token=alice).get_json()
    assert (glance["os_distro"], glance["os_version"], glance["hw_disk_bus"]) == (
        "ubuntu", "24.04", "virtio")
    replaced = c.compute("PUT", url, {"metadata": {"only": "this"}}, token=alice)
    assert replaced.status_code == 200 and replaced.get_json() == {"metadata": {"only": "this"}}
    assert c.compute("GET", url, token=alice).get_json() == {"metadata": {"only": "this"}}
    assert c.compute("DELETE", f"{url}/only", token=alice).status_code == 204
    assert c.compute("DELETE", f"{url}/only", token=alice).status_code == 404
    assert c.compute("GET", url, token=alice).get_json() == {"metadata": {}}
    too_many = {f"k{i}": "v" for i in range(129)}
    assert c.compute("PUT", url, {"metadata": too_many}, token=alice).status_code == 403
    assert c.compute("GET", "/images/00000000-0000-0000-0000-000000000000/metadata",
                     token=alice).status_code == 404


def test_boot_from_an_image_of_another_project_is_400(two: InProcessCloud) -> None:
    c = two
    private = make_image(c, "alice", name="alice-private", visibility="private")
    shared = make_image(c, "alice", name="alice-shared")
    bob = tok(c, "bob")
    for image in (private, shared):
        resp = c.compute("POST", "/servers", {"server": {
            "name": "vm", "flavorRef": "1", "imageRef": image["id"]}}, token=bob)
        assert resp.status_code == 400, resp.get_data(as_text=True)
        assert resp.get_json()["badRequest"]["message"] == "Can not find requested image"
    # Alice herself may boot it.
    resp = c.compute("POST", "/servers", {"server": {
        "name": "vm", "flavorRef": "1", "imageRef": private["id"]}}, token=tok(c, "alice"))
    assert resp.status_code == 202, resp.get_data(as_text=True)
