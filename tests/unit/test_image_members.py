"""Image v2 members (sharing), the upload size cap and the configured format lists."""
from __future__ import annotations

import os
from typing import Any, Iterator

import pytest

from stratus.image.app import build_image_app
from stratus.image.service import ImageService, ImageTooLarge
from stratus.identity.auth import make_authenticator
from tests.unit.test_image import ImageEnv, build_env, chunked_put
from werkzeug.test import Client

MEMBER_KEYS = {"created_at", "image_id", "member_id", "schema", "status", "updated_at"}


@pytest.fixture
def env(tmp_path: Any, sqlite_url: str) -> Iterator[ImageEnv]:
    yield from build_env(tmp_path, sqlite_url)


def names(env: ImageEnv, who: str, query: str = "") -> set[str]:
    resp = env.client.get(f"/v2/images{query}", headers=env.headers(who))
    assert resp.status_code == 200, resp.json
    return {i["name"] for i in resp.json["images"]}


def members_url(image: dict[str, Any], member: str | None = None) -> str:
    return f"/v2/images/{image['id']}/members" + (f"/{member}" if member else "")


def test_member_schemas(env: ImageEnv) -> None:
    member = env.client.get("/v2/schemas/member", headers=env.headers()).json
    assert member["name"] == "member"
    assert set(member["properties"]) == MEMBER_KEYS
    assert member["properties"]["status"]["enum"] == ["pending", "accepted", "rejected"]
    members = env.client.get("/v2/schemas/members", headers=env.headers()).json
    assert members["name"] == "members"
    assert members["properties"]["members"]["items"]["name"] == "member"


@pytest.fixture
def any_env(tmp_path: Any, database: Any) -> Iterator[ImageEnv]:
    """The image environment on SQLite, PostgreSQL and MariaDB in turn."""
    yield from build_env(tmp_path, database.url)


def test_sharing_lifecycle(any_env: ImageEnv) -> None:
    env = any_env
    other = env.projects["other"]
    image = env.create(name="shared-img", visibility="shared")
    assert names(env, "other") == set()
    assert env.client.get(f"/v2/images/{image['id']}",
                          headers=env.headers("other")).status_code == 404

    resp = env.client.post(members_url(image), json={"member": other}, headers=env.headers())
    assert resp.status_code == 200, resp.json
    member = resp.json
    assert set(member) == MEMBER_KEYS
    assert (member["image_id"], member["member_id"], member["status"]) == (
        image["id"], other, "pending")
    assert member["schema"] == "/v2/schemas/member"
    assert member["created_at"].endswith("Z")
    again = env.client.post(members_url(image), json={"member": other}, headers=env.headers())
    assert again.status_code == 409

    # Pending: visible by id and with member_status, not in the default list.
    assert env.client.get(f"/v2/images/{image['id']}",
                          headers=env.headers("other")).status_code == 200
    assert names(env, "other") == set()
    assert names(env, "other", "?member_status=pending") == {"shared-img"}
    assert names(env, "other", "?visibility=shared&member_status=all") == {"shared-img"}
    # The consumer cannot change the image, nor add members.
    assert env.patch(image["id"], [{"op": "replace", "path": "/name", "value": "x"}],
                     who="other").status_code == 403
    assert env.client.post(members_url(image), json={"member": "x"},
                           headers=env.headers("other")).status_code == 403
    assert env.client.delete(f"/v2/images/{image['id']}",
                             headers=env.headers("other")).status_code == 403

    # The owner cannot accept on behalf of the member.
    assert env.client.put(members_url(image, other), json={"status": "accepted"},
                          headers=env.headers()).status_code == 403
    bad = env.client.put(members_url(image, other), json={"status": "maybe"},
                         headers=env.headers("other"))
    assert bad.status_code == 400
    accepted = env.client.put(members_url(image, other), json={"status": "accepted"},
                              headers=env.headers("other"))
    assert accepted.status_code == 200 and accepted.json["status"] == "accepted"
    assert names(env, "other") == {"shared-img"}
    assert names(env, "other", "?visibility=shared") == {"shared-img"}
    assert names(env, "other", "?member_status=pending") == set()

    # Listing: the owner sees all members, a member only itself.
    env.client.post(members_url(image), json={"member": "third-project"},
                    headers=env.headers())
    owner_view = env.client.get(members_url(image), headers=env.headers()).json
    assert owner_view["schema"] == "/v2/schemas/members"
    assert [m["member_id"] for m in owner_view["members"]] == [other, "third-project"]
    member_view = env.client.get(members_url(image), headers=env.headers("other")).json
    assert [m["member_id"] for m in member_view["members"]] == [other]
    assert env.client.get(members_url(image, other),
                          headers=env.headers("other")).json["status"] == "accepted"
    assert env.client.get(members_url(image, "third-project"),
                          headers=env.headers("other")).status_code == 404

    rejected = env.client.put(members_url(image, other), json={"status": "rejected"},
                              headers=env.headers("other"))
    assert rejected.json["status"] == "rejected"
    assert names(env, "other") == set()
    assert names(env, "other", "?member_status=rejected") == {"shared-img"}

    # The owner removes the member: the image is gone for it.
    assert env.client.delete(members_url(image, other),
                             headers=env.headers("other")).status_code == 403
    assert env.client.delete(members_url(image, other),
                             headers=env.headers()).status_code == 204
    assert env.client.delete(members_url(image, other),
                             headers=env.headers()).status_code == 404
    assert env.client.get(f"/v2/images/{image['id']}",
                          headers=env.headers("other")).status_code == 404


def test_members_need_a_shared_image(env: ImageEnv) -> None:
    private = env.create(name="p", visibility="private")
    resp = env.client.post(members_url(private), json={"member": env.projects["other"]},
                           headers=env.headers())
    assert resp.status_code == 403 and "shared" in resp.json["message"]
    assert env.client.get(members_url(private), headers=env.headers()).status_code == 403
    image = env.create(name="s")
    assert env.client.post(members_url(image), json={},
                           headers=env.headers()).status_code == 400
    missing = "/v2/images/00000000-0000-0000-0000-000000000000/members"
    assert env.client.get(missing, headers=env.headers()).status_code == 404


def test_shared_image_boots_for_a_member(env: ImageEnv) -> None:
    image = env.create(name="boot", disk_format="raw", container_format="bare")
    env.upload(image["id"], b"bootable")
    other = env.context("other")
    with pytest.raises(Exception):
        env.service.get(other, image["id"])
    env.service.add_member(env.context("demo"), image["id"], env.projects["other"])
    assert env.service.get(other, image["id"])["id"] == image["id"]


def test_upload_over_the_size_cap_is_413_and_leaves_nothing(tmp_path: Any,
                                                            sqlite_url: str) -> None:
    gen = build_env(tmp_path, sqlite_url)
    env = next(gen)
    try:
        env.conf.set("image", "max_image_size", 1000)
        app = build_image_app(env.conf, env.db, env.store,
                              make_authenticator_for(env))
        client = Client(app)
        image = env.create(disk_format="raw", container_format="bare")
        headers = env.headers(**{"Content-Type": "application/octet-stream"})
        # Content-Length announces too much: refused before reading.
        resp = client.put(f"/v2/images/{image['id']}/file", data=b"x" * 1001,
                          headers=headers)
        assert resp.status_code == 413, resp.json
        assert resp.json["code"] == "413 Request Entity Too Large"
        # A chunked body passes the cap while streaming.
        status, body = chunked_put(app, f"/v2/images/{image['id']}/file",
                                   [b"y" * 600, b"y" * 600], headers)
        assert status.startswith("413"), body
        shown = client.get(f"/v2/images/{image['id']}", headers=env.headers()).json
        assert (shown["status"], shown["size"], shown["checksum"]) == ("queued", None, None)
        assert os.listdir(env.store.store_dir) == []
        assert client.put(f"/v2/images/{image['id']}/file", data=b"z" * 1000,
                          headers=headers).status_code == 204
        shown = client.get(f"/v2/images/{image['id']}", headers=env.headers()).json
        assert (shown["status"], shown["size"]) == ("active", 1000)
        service = ImageService(env.db, env.store, max_image_size=10)
        image2 = env.create(disk_format="raw", container_format="bare")
        with pytest.raises(ImageTooLarge):
            service.upload(env.context("demo"), image2["id"], iter([b"a" * 6, b"b" * 6]))
        assert service.show(env.context("demo"), image2["id"])["status"] == "queued"
    finally:
        gen.close()


def make_authenticator_for(env: ImageEnv) -> Any:
    from stratus.identity.tokens import TokenProvider

    return make_authenticator(TokenProvider(env.conf.identity.key_file, env.db), env.db)


def test_configured_format_lists(tmp_path: Any, sqlite_url: str) -> None:
    gen = build_env(tmp_path, sqlite_url)
    env = next(gen)
    try:
        env.conf.set("image", "disk_formats", ["raw", "qcow2"])
        env.conf.set("image", "container_formats", ["bare"])
        client = Client(build_image_app(env.conf, env.db, env.store,
                                        make_authenticator_for(env)))
        ok = client.post("/v2/images", json={"disk_format": "qcow2",
                                             "container_format": "bare"},
                         headers=env.headers())
        assert ok.status_code == 201
        for values in ({"disk_format": "vmdk"}, {"container_format": "ovf"}):
            resp = client.post("/v2/images", json=values, headers=env.headers())
            assert resp.status_code == 400, values
        resp = client.patch(f"/v2/images/{ok.json['id']}",
                            json=[{"op": "replace", "path": "/disk_format", "value": "iso"}],
                            headers=env.headers(**{"Content-Type": "application/"
                                                   "openstack-images-v2.1-json-patch"}))
        assert resp.status_code == 400
    finally:
        gen.close()


def test_member_limit_is_413(env: ImageEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    from stratus.image import service

    monkeypatch.setattr(service, "MEMBER_QUOTA", 1)
    image = env.create(name="s")
    assert env.client.post(members_url(image), json={"member": "p1"},
                           headers=env.headers()).status_code == 200
    resp = env.client.post(members_url(image), json={"member": "p2"}, headers=env.headers())
    assert resp.status_code == 413 and "limit" in resp.json["message"]
