"""createImage (server snapshot): the API's image record, the compute's upload, failures."""
from __future__ import annotations

import orjson
import pytest

from stratus.compute.virt import fake


class InProcessImageAPI:
    """The compute's image client, talking to the in-process cloud's image API."""

    def __init__(self, cloud) -> None:
        self.cloud = cloud
        self.fail_upload = False

    def set_formats(self, image_id, disk_format, container_format):
        resp = self.cloud.request(
            "PATCH", f"/image/v2/images/{image_id}",
            raw=orjson.dumps([{"op": "replace", "path": "/disk_format", "value": disk_format},
                              {"op": "replace", "path": "/container_format",
                               "value": container_format}]),
            headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})
        assert resp.status_code == 200, resp.get_data(as_text=True)

    def upload(self, image_id, chunks, size=None):
        if self.fail_upload:
            raise OSError("connection reset by the image service")
        resp = self.cloud.request("PUT", f"/image/v2/images/{image_id}/file",
                                  raw=b"".join(chunks),
                                  headers={"Content-Type": "application/octet-stream"})
        assert resp.status_code == 204, resp.get_data(as_text=True)

    def delete(self, image_id):
        self.cloud.request("DELETE", f"/image/v2/images/{image_id}")

    def list_images(self, filters, sort_key="created_at", sort_dir="desc"):
        from urllib.parse import urlencode

        query = urlencode({**filters, "sort_key": sort_key, "sort_dir": sort_dir,
                           "limit": 1000})
        resp = self.cloud.request("GET", f"/image/v2/images?{query}")
        assert resp.status_code == 200, resp.get_data(as_text=True)
        return resp.get_json()["images"]


@pytest.fixture
def images(cloud):
    api = InProcessImageAPI(cloud)
    cloud.computes["host1"].manager.image_api = api
    return api


def create_image(cloud, server_id, body):
    return cloud.compute("POST", f"/servers/{server_id}/action", {"createImage": body})


def wait_image(cloud, image_id, status, timeout=10.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = cloud.request("GET", f"/image/v2/images/{image_id}")
        if status == "deleted" and resp.status_code == 404:
            return None
        if resp.status_code == 200 and resp.get_json()["status"] == status:
            return resp.get_json()
        time.sleep(0.01)
    raise AssertionError(f"image {image_id} not {status}")


def test_snapshot_uploads_the_root_disk_with_novas_properties(cloud, images):
    base = cloud.create_image("base")
    cloud.request("PATCH", f"/image/v2/images/{base}", raw=orjson.dumps(
        [{"op": "add", "path": "/os_distro", "value": "busybox"}]),
        headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})
    server = cloud.boot("snappy", image=base)
    resp = create_image(cloud, server["id"], {"name": "snap-1", "metadata": {"purpose": "test"}})
    assert resp.status_code == 202, resp.get_data(as_text=True)
    assert resp.get_data() == b""
    image_id = resp.headers["Location"].rsplit("/", 1)[1]
    image = wait_image(cloud, image_id, "active")
    cloud.wait_for(server["id"], "ACTIVE")
    assert image["name"] == "snap-1" and image["visibility"] == "private"
    assert image["disk_format"] == "raw"  # what the fake driver produced
    assert image["instance_uuid"] == server["id"] and image["image_type"] == "snapshot"
    assert image["base_image_ref"] == base and image["purpose"] == "test"
    assert image["os_distro"] == "busybox"  # inherited from the base image
    data = cloud.request("GET", f"/image/v2/images/{image_id}/file").get_data()
    assert data.startswith(fake.SNAPSHOT_MAGIC)
    assert orjson.loads(data[len(fake.SNAPSHOT_MAGIC):])["instance_uuid"] == server["id"]
    actions = cloud.compute("GET", f"/servers/{server['id']}/os-instance-actions").get_json()
    assert "createImage" in [a["action"] for a in actions["instanceActions"]]
    # The snapshot boots.
    cloud.boot("from-snap", image=image_id)


def test_a_failed_upload_deletes_the_image_and_records_a_fault(cloud, images):
    server = cloud.boot("unlucky")
    images.fail_upload = True
    resp = create_image(cloud, server["id"], {"name": "doomed"})
    assert resp.status_code == 202
    image_id = resp.headers["Location"].rsplit("/", 1)[1]
    wait_image(cloud, image_id, "deleted")
    shown = cloud.wait_for(server["id"], "ACTIVE")
    assert shown["OS-EXT-STS:task_state"] is None


def test_create_image_needs_a_name_and_a_state_that_allows_it(cloud, images):
    server = cloud.boot("picky")
    assert create_image(cloud, server["id"], {}).status_code == 400
    assert create_image(cloud, server["id"], {"name": ""}).status_code == 400
    assert create_image(cloud, server["id"], {"name": "x", "extra": 1}).status_code == 400
    assert create_image(cloud, server["id"], {"name": "x", "metadata": {"k": 1}}
                        ).status_code == 400
    cloud.compute("POST", f"/servers/{server['id']}/action", {"os-stop": None})
    cloud.wait_for(server["id"], "SHUTOFF")
    resp = create_image(cloud, server["id"], {"name": "stopped-snap"})
    assert resp.status_code == 202  # stopped guests can be snapshotted
    wait_image(cloud, resp.headers["Location"].rsplit("/", 1)[1], "active")
