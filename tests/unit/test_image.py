"""Image v2: the file store, the Glance API and the service the compute API uses.

API tests go through werkzeug's test client against a real database: SQLite
in tmp_path, and again on PostgreSQL and MariaDB when they are reachable
(``TestImagesOnServerDatabases``). ``test_openstacksdk_end_to_end`` serves
identity and image with waitress and drives them with openstacksdk.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import socket
import struct
import uuid
from typing import Any, Iterator

import pytest
import requests
from werkzeug.test import Client, EnvironBuilder, run_wsgi_app

import stratus.conf
from stratus import exception
from stratus.api import wsgi
from stratus.context import RequestContext
from stratus.db.session import Database
from stratus.identity import backend
from stratus.identity.app import build_identity_app
from stratus.identity.auth import make_authenticator
from stratus.identity.service import bootstrap
from stratus.identity.tokens import TokenProvider
from stratus.image.app import build_image_app
from stratus.image.service import (ImageGone, ImageNotActive, ImageService,
                                   qcow2_virtual_size)
from stratus.image.store import FileStore

PUBLIC_URL = "http://stratus.test:8774"
PATCH_TYPE = "application/openstack-images-v2.1-json-patch"
IMAGE_KEYS = {"id", "name", "status", "visibility", "protected", "os_hidden", "checksum",
              "os_hash_algo", "os_hash_value", "size", "virtual_size", "min_disk",
              "min_ram", "disk_format", "container_format", "owner", "created_at",
              "updated_at", "tags", "self", "file", "schema"}


# -- the image environment ------------------------------------------------------------

def make_conf(tmp_path: Any, db_url: str, public_url: str = PUBLIC_URL) -> Any:
    return stratus.conf.load(None, {("DEFAULT", "state_path"): str(tmp_path),
                                    ("database", "connection"): db_url,
                                    ("api", "public_url"): public_url})


@dataclasses.dataclass
class ImageEnv:
    conf: Any
    db: Database
    store: FileStore
    service: ImageService
    client: Client
    app: wsgi.App
    tokens: dict[str, str]          # admin, demo, other -> X-Auth-Token
    projects: dict[str, str]        # admin, demo, other -> project id

    def headers(self, who: str = "demo", **extra: str) -> dict[str, str]:
        return {"X-Auth-Token": self.tokens[who], **extra}

    def context(self, who: str) -> RequestContext:
        return RequestContext(user_id=who, project_id=self.projects[who],
                              roles=["admin"] if who == "admin" else ["member"],
                              is_admin=who == "admin")

    def create(self, who: str = "demo", **values: Any) -> dict[str, Any]:
        resp = self.client.post("/v2/images", json=values, headers=self.headers(who))
        assert resp.status_code == 201, resp.json
        return resp.json

    def upload(self, image_id: str, data: bytes, who: str = "demo") -> Any:
        return self.client.put(f"/v2/images/{image_id}/file", data=data,
                               headers=self.headers(
                                   who, **{"Content-Type": "application/octet-stream"}))

    def patch(self, image_id: str, ops: list[dict[str, Any]], who: str = "demo",
              content_type: str = PATCH_TYPE) -> Any:
        return self.client.patch(f"/v2/images/{image_id}", json=ops,
                                 headers=self.headers(who, **{"Content-Type": content_type}))


def build_env(tmp_path: Any, db_url: str) -> Iterator[ImageEnv]:
    conf = make_conf(tmp_path, db_url)
    db = Database(db_url)
    try:
        admin = bootstrap(db, password="pw")
        provider = TokenProvider(conf.identity.key_file, db)
        tokens = {"admin": provider.issue(admin.user_id, admin.project_id, ["password"])[0]}
        projects = {"admin": admin.project_id}
        for name in ("demo", "other"):
            project = backend.create_project(db, name)
            user = backend.create_user(db, name, "pw")
            backend.grant_role(db, user["id"], project["id"], "member")
            tokens[name] = provider.issue(user["id"], project["id"], ["password"])[0]
            projects[name] = project["id"]
        store = FileStore(conf.image.store_dir)
        app = build_image_app(conf, db, store, make_authenticator(provider, db))
        yield ImageEnv(conf=conf, db=db, store=store, service=ImageService(db, store),
                       client=Client(app), app=app, tokens=tokens, projects=projects)
    finally:
        db.dispose()


def chunked_put(app: wsgi.App, path: str, chunks: list[bytes],
                headers: dict[str, str]) -> tuple[str, bytes]:
    """A PUT as a server delivers a chunked body: no Content-Length, input terminated."""
    environ = EnvironBuilder(path=path, method="PUT", headers=headers,
                             input_stream=io.BytesIO(b"".join(chunks))).get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    environ["wsgi.input_terminated"] = True
    app_iter, status, _headers = run_wsgi_app(app, environ)
    return status, b"".join(app_iter)


def qcow2_header(virtual: int) -> bytes:
    return b"QFI\xfb" + struct.pack(">I", 3) + b"\0" * 16 + struct.pack(">Q", virtual) \
        + b"\0" * 72


# -- units without a database -----------------------------------------------------------

class TestFileStore:
    def test_streams_hashes_and_renames(self, tmp_path: Any) -> None:
        store = FileStore(str(tmp_path / "images"))
        chunks = [os.urandom(1000) for _ in range(50)]
        data = b"".join(chunks)
        image_id = str(uuid.uuid4())
        stored = store.write(image_id, iter(chunks))
        assert stored.size == len(data)
        assert stored.checksum == hashlib.md5(data).hexdigest()
        assert stored.os_hash_algo == "sha512"
        assert stored.os_hash_value == hashlib.sha512(data).hexdigest()
        assert stored.head == data[:512]
        assert os.listdir(store.store_dir) == [image_id]
        assert b"".join(store.iter_data(image_id)) == data
        assert b"".join(store.iter_data(image_id, 10, 2000)) == data[10:2010]
        assert store.size(image_id) == len(data)
        assert store.delete(image_id) and not store.delete(image_id)
        with pytest.raises(exception.NotFound):
            store.iter_data(image_id)

    def test_failed_write_leaves_nothing(self, tmp_path: Any) -> None:
        store = FileStore(str(tmp_path))

        def broken() -> Iterator[bytes]:
            yield b"x" * 100
            raise OSError("client went away")

        with pytest.raises(OSError):
            store.write("img", broken())
        assert os.listdir(tmp_path) == []

    @pytest.mark.parametrize("bad", ["../etc/passwd", "a/b", "", ".hidden", "x" * 300])
    def test_unsafe_ids_are_rejected(self, tmp_path: Any, bad: str) -> None:
        with pytest.raises(exception.Invalid):
            FileStore(str(tmp_path)).path(bad)

    def test_qcow2_virtual_size(self) -> None:
        assert qcow2_virtual_size(qcow2_header(10 * 2 ** 30)) == 10 * 2 ** 30
        assert qcow2_virtual_size(b"\0" * 64) is None


def test_versions_and_schemas(tmp_path: Any) -> None:
    conf = make_conf(tmp_path, "sqlite://")
    db = Database("sqlite://")
    app = build_image_app(conf, db, FileStore(str(tmp_path / "s")),
                          lambda req: RequestContext(user_id="u", project_id="p"))
    client = Client(app)
    root = client.get("/")
    assert root.status_code == 300
    versions = root.json["versions"]
    assert versions[0] == {"id": "v2.15", "status": "CURRENT", "links": [
        {"rel": "self", "href": f"{PUBLIC_URL}/image/v2/"}]}
    assert {v["id"] for v in versions} >= {"v2.0", "v2.1", "v2.9"}
    assert all(v["status"] == "SUPPORTED" for v in versions[1:])
    assert client.get("/versions").status_code == 200
    schema = client.get("/v2/schemas/image").json
    assert schema["name"] == "image"
    assert set(schema["properties"]) >= IMAGE_KEYS
    assert schema["additionalProperties"] == {"type": "string"}
    assert schema["properties"]["visibility"]["enum"] == ["public", "private", "shared",
                                                          "community"]
    images = client.get("/v2/schemas/images").json
    assert images["name"] == "images"
    assert images["properties"]["images"]["items"]["name"] == "image"


def test_unauthenticated_requests_are_401(tmp_path: Any) -> None:
    conf = make_conf(tmp_path, "sqlite://")
    app = build_image_app(conf, Database("sqlite://"), FileStore(str(tmp_path / "s")),
                          lambda req: None)
    resp = Client(app).get("/v2/images")
    assert resp.status_code == 401
    assert resp.json == {"code": "401 Unauthorized", "title": "Unauthorized",
                         "message": "The request you have made requires authentication."}


# -- the API on a database -----------------------------------------------------------

class _ImageScenarios:
    """Tests that need a database; subclasses provide the ``env`` fixture."""

    def test_create_minimal(self, env: ImageEnv) -> None:
        resp = env.client.post("/v2/images", json={}, headers=env.headers())
        assert resp.status_code == 201
        image = resp.json
        assert set(image) == IMAGE_KEYS
        assert resp.headers["Location"] == f"{PUBLIC_URL}/image/v2/images/{image['id']}"
        assert image == {
            "id": image["id"], "name": None, "status": "queued", "visibility": "shared",
            "protected": False, "os_hidden": False, "checksum": None, "os_hash_algo": None,
            "os_hash_value": None, "size": None, "virtual_size": None, "min_disk": 0,
            "min_ram": 0, "disk_format": None, "container_format": None,
            "owner": env.projects["demo"], "created_at": image["created_at"],
            "updated_at": image["created_at"], "tags": [],
            "self": f"/v2/images/{image['id']}", "file": f"/v2/images/{image['id']}/file",
            "schema": "/v2/schemas/image"}
        assert image["created_at"].endswith("Z") and len(image["created_at"]) == 20

    def test_create_full_with_properties(self, env: ImageEnv) -> None:
        image_id = str(uuid.uuid4())
        image = env.create(id=image_id, name="cirros", disk_format="qcow2",
                           container_format="bare", visibility="private", min_disk=1,
                           min_ram=64, protected=True, os_hidden=False, tags=["a", "b", "a"],
                           os_distro="cirros", hw_disk_bus="virtio")
        assert image["id"] == image_id
        assert (image["name"], image["disk_format"], image["visibility"]) == (
            "cirros", "qcow2", "private")
        assert (image["min_disk"], image["min_ram"], image["protected"]) == (1, 64, True)
        assert image["tags"] == ["a", "b"]
        assert image["os_distro"] == "cirros" and image["hw_disk_bus"] == "virtio"
        shown = env.client.get(f"/v2/images/{image_id}", headers=env.headers()).json
        assert shown == image

    @pytest.mark.parametrize("values, status", [
        ({"disk_format": "floppy"}, 400),
        ({"container_format": "zip"}, 400),
        ({"visibility": "everyone"}, 400),
        ({"min_ram": -1}, 400),
        ({"min_disk": "1"}, 400),
        ({"protected": "yes"}, 400),
        ({"id": "not-a-uuid"}, 400),
        ({"name": "x" * 256}, 400),
        ({"tags": ["x" * 256]}, 400),
        ({"extra": 5}, 400),
        ({"status": "active"}, 403),
        ({"checksum": "abc"}, 403),
        ({"size": 1}, 403),
        ({"os_glance_import_task": "x"}, 403),
        ({"deleted": "true"}, 403),
        ({"visibility": "public"}, 403),      # publicize_image is admin-only
        ({"owner": "someone-else"}, 403),
    ])
    def test_create_rejects(self, env: ImageEnv, values: dict[str, Any],
                            status: int) -> None:
        resp = env.client.post("/v2/images", json=values, headers=env.headers())
        assert resp.status_code == status, resp.json
        assert resp.json["code"].startswith(str(status)) and resp.json["message"]

    def test_create_duplicate_id_is_409(self, env: ImageEnv) -> None:
        image_id = str(uuid.uuid4())
        env.create(id=image_id)
        resp = env.client.post("/v2/images", json={"id": image_id}, headers=env.headers())
        assert resp.status_code == 409

    def test_admin_may_publicize_and_set_owner(self, env: ImageEnv) -> None:
        image = env.create("admin", visibility="public", owner=env.projects["other"])
        assert (image["visibility"], image["owner"]) == ("public", env.projects["other"])

    def test_visibility_rules(self, env: ImageEnv) -> None:
        public = env.create("admin", name="public", visibility="public")
        admin_private = env.create("admin", name="admin-private", visibility="private")
        mine = env.create("demo", name="mine-shared")
        community = env.create("other", name="theirs-community", visibility="community")
        theirs = env.create("other", name="theirs-private", visibility="private")
        hidden = env.create("demo", name="mine-hidden", os_hidden=True)

        def names(who: str, query: str = "") -> set[str]:
            resp = env.client.get(f"/v2/images{query}", headers=env.headers(who))
            assert resp.status_code == 200, resp.json
            return {i["name"] for i in resp.json["images"]}

        assert names("demo") == {"public", "mine-shared"}
        assert names("demo", "?visibility=all") == {"public", "mine-shared",
                                                    "theirs-community"}
        assert names("demo", "?visibility=community") == {"theirs-community"}
        assert names("demo", "?visibility=private") == set()
        assert names("demo", "?os_hidden=true") == {"mine-hidden"}
        assert names("admin") == {"public", "admin-private", "mine-shared",
                                  "theirs-community", "theirs-private"}
        assert names("admin", "?visibility=private") == {"admin-private", "theirs-private"}
        for image in (public, mine, community, hidden):
            assert env.client.get(f"/v2/images/{image['id']}",
                                  headers=env.headers()).status_code == 200
        for image in (theirs, admin_private):
            resp = env.client.get(f"/v2/images/{image['id']}", headers=env.headers())
            assert resp.status_code == 404
            assert resp.json["code"] == "404 Not Found"
        assert env.client.get(f"/v2/images/{theirs['id']}",
                              headers=env.headers("admin")).status_code == 200
        assert env.client.get("/v2/images/not-a-uuid", headers=env.headers()).status_code \
            == 404

    def test_list_filters(self, env: ImageEnv) -> None:
        a = env.create(name="alpha", disk_format="raw", container_format="bare",
                       tags=["gold", "linux"], os_distro="ubuntu")
        b = env.create(name="beta", disk_format="qcow2", container_format="bare",
                       tags=["linux"], os_distro="fedora")
        env.create(name="gamma", disk_format="raw", container_format="ovf", protected=True)
        assert env.upload(a["id"], b"x" * 100).status_code == 204

        def names(query: str) -> list[str]:
            resp = env.client.get(f"/v2/images?{query}", headers=env.headers())
            assert resp.status_code == 200, resp.json
            return sorted(i["name"] for i in resp.json["images"])

        assert names("name=alpha") == ["alpha"]
        assert names("name=in:alpha,gamma") == ["alpha", "gamma"]
        assert names(f"id=in:{a['id']},{b['id']}") == ["alpha", "beta"]
        assert names("status=active") == ["alpha"]
        assert names("status=queued") == ["beta", "gamma"]
        assert names("disk_format=raw") == ["alpha", "gamma"]
        assert names("container_format=ovf") == ["gamma"]
        assert names("tag=linux") == ["alpha", "beta"]
        assert names("tag=linux&tag=gold") == ["alpha"]
        assert names("os_distro=fedora") == ["beta"]
        assert names("protected=true") == ["gamma"]
        assert names("size_min=50") == ["alpha"]
        assert names("size_max=50") == []
        assert names(f"owner={env.projects['demo']}") == ["alpha", "beta", "gamma"]
        assert names("created_at=gt:2000-01-01T00:00:00Z") == ["alpha", "beta", "gamma"]
        assert names("created_at=lt:2000-01-01T00:00:00Z") == []
        for bad in ("limit=-1", "limit=x", "sort_key=bogus", "sort_dir=sideways",
                    "sort=name:up", "sort=name&sort_key=name", "visibility=nope",
                    "protected=maybe", "size_min=x", "created_at=gt:yesterday",
                    f"marker={uuid.uuid4()}"):
            resp = env.client.get(f"/v2/images?{bad}", headers=env.headers())
            assert resp.status_code == 400, bad

    def test_sorting_and_pagination(self, env: ImageEnv) -> None:
        names = ["delta", "alpha", None, "charlie", "bravo", "echo", "alpha"]
        created = [env.create(**({"name": n} if n else {})) for n in names]
        body = env.client.get("/v2/images", headers=env.headers()).json
        assert body["first"] == "/v2/images" and body["schema"] == "/v2/schemas/images"
        assert "next" not in body
        # Default: newest first.
        assert [i["id"] for i in body["images"]] == [i["id"] for i in reversed(created)]

        def walk(query: str) -> list[dict[str, Any]]:
            seen: list[dict[str, Any]] = []
            url = f"/v2/images?{query}"
            while url:
                resp = env.client.get(url, headers=env.headers())
                assert resp.status_code == 200
                assert len(resp.json["images"]) <= 2
                seen.extend(resp.json["images"])
                url = resp.json.get("next")
                if url:
                    assert url.startswith("/v2/images?") and "limit=2" in url
            return seen

        by_name = walk("limit=2&sort_key=name&sort_dir=asc")
        assert len(by_name) == len(names)
        assert [i["name"] for i in by_name] == [None, "alpha", "alpha", "bravo", "charlie",
                                                "delta", "echo"]
        assert len({i["id"] for i in by_name}) == len(names)
        desc = walk("limit=2&sort=name:desc,created_at:asc")
        assert [i["name"] for i in desc] == ["echo", "delta", "charlie", "bravo", "alpha",
                                             "alpha", None]
        alphas = [i["id"] for i in desc if i["name"] == "alpha"]
        assert alphas == [created[1]["id"], created[6]["id"]]  # created_at asc
        first = env.client.get("/v2/images?limit=3&name=alpha", headers=env.headers()).json
        assert first["first"] == "/v2/images?limit=3&name=alpha"

    def test_patch(self, env: ImageEnv) -> None:
        image = env.create(name="old", os_distro="ubuntu", tags=["a"])
        resp = env.patch(image["id"], [
            {"op": "replace", "path": "/name", "value": "new"},
            {"op": "add", "path": "/os_version", "value": "24.04"},
            {"op": "add", "path": "/os_distro", "value": "debian"},   # add replaces
            {"op": "replace", "path": "/tags", "value": ["x", "y", "x"]},
            {"op": "replace", "path": "/min_ram", "value": 512},
            {"op": "add", "path": "/disk_format", "value": "raw"},
            {"op": "add", "path": "/a~1b", "value": "slash"},
        ])
        assert resp.status_code == 200, resp.json
        patched = resp.json
        assert (patched["name"], patched["os_version"], patched["os_distro"]) == (
            "new", "24.04", "debian")
        assert patched["tags"] == ["x", "y"] and patched["min_ram"] == 512
        assert patched["disk_format"] == "raw" and patched["a/b"] == "slash"
        removed = env.patch(image["id"], [{"op": "remove", "path": "/os_version"}]).json
        assert "os_version" not in removed
        shown = env.client.get(f"/v2/images/{image['id']}", headers=env.headers()).json
        assert shown == removed
        # The v2.0 media type.
        v20 = env.patch(image["id"], [{"replace": "/name", "value": "v20"}],
                        content_type="application/openstack-images-v2.0-json-patch")
        assert v20.status_code == 200 and v20.json["name"] == "v20"

    @pytest.mark.parametrize("ops, status", [
        ([{"op": "replace", "path": "/missing", "value": "x"}], 409),
        ([{"op": "remove", "path": "/missing"}], 409),
        ([{"op": "remove", "path": "/name"}], 403),
        ([{"op": "replace", "path": "/status", "value": "active"}], 403),
        ([{"op": "replace", "path": "/checksum", "value": "x"}], 403),
        ([{"op": "replace", "path": "/id", "value": str(uuid.uuid4())}], 403),
        ([{"op": "replace", "path": "/visibility", "value": "public"}], 403),
        ([{"op": "replace", "path": "/owner", "value": "x"}], 403),
        ([{"op": "replace", "path": "/min_ram", "value": "lots"}], 400),
        ([{"op": "add", "path": "/extra", "value": 1}], 400),
        ([{"op": "move", "path": "/name", "value": "x"}], 400),
        ([{"op": "add", "path": "/name"}], 400),
        ([{"op": "add", "path": "/locations/-", "value": "x"}], 400),
        ([{"op": "add", "path": "name", "value": "x"}], 400),
        ({"op": "add"}, 400),
    ])
    def test_patch_rejects(self, env: ImageEnv, ops: Any, status: int) -> None:
        image = env.create(name="keep")
        resp = env.patch(image["id"], ops)
        assert resp.status_code == status, resp.json
        shown = env.client.get(f"/v2/images/{image['id']}", headers=env.headers()).json
        assert shown == image  # nothing changed

    def test_patch_media_type_and_ownership(self, env: ImageEnv) -> None:
        image = env.create(name="mine")
        wrong = env.patch(image["id"], [], content_type="application/json")
        assert wrong.status_code == 415
        public = env.create("admin", visibility="public", name="pub")
        assert env.patch(public["id"], [{"op": "replace", "path": "/name",
                                         "value": "x"}]).status_code == 403
        theirs = env.create("other", visibility="private")
        assert env.patch(theirs["id"], [{"op": "replace", "path": "/name",
                                         "value": "x"}]).status_code == 404
        by_admin = env.patch(image["id"], [{"op": "replace", "path": "/visibility",
                                            "value": "public"}], who="admin")
        assert by_admin.status_code == 200 and by_admin.json["visibility"] == "public"

    def test_upload_download_delete(self, env: ImageEnv) -> None:
        data = os.urandom(200_000)
        image = env.create(name="disk", disk_format="raw", container_format="bare")
        image_id = image["id"]
        assert env.client.get(f"/v2/images/{image_id}/file",
                              headers=env.headers()).status_code == 204
        status, body = chunked_put(env.app, f"/v2/images/{image_id}/file",
                                   [data[:70_000], data[70_000:]],
                                   env.headers(**{"Content-Type": "application/octet-stream"}))
        assert status.startswith("204"), body
        shown = env.client.get(f"/v2/images/{image_id}", headers=env.headers()).json
        assert shown["status"] == "active"
        assert shown["size"] == shown["virtual_size"] == len(data)
        assert shown["checksum"] == hashlib.md5(data).hexdigest()
        assert (shown["os_hash_algo"], shown["os_hash_value"]) == (
            "sha512", hashlib.sha512(data).hexdigest())
        assert env.store.exists(image_id)

        resp = env.client.get(f"/v2/images/{image_id}/file", headers=env.headers())
        assert resp.status_code == 200 and resp.data == data
        assert resp.headers["Content-MD5"] == shown["checksum"]
        assert resp.headers["Content-Type"] == "application/octet-stream"
        assert int(resp.headers["Content-Length"]) == len(data)
        ranged = env.client.get(f"/v2/images/{image_id}/file",
                                headers=env.headers(Range="bytes=100-199"))
        assert ranged.status_code == 206 and ranged.data == data[100:200]
        assert ranged.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
        tail = env.client.get(f"/v2/images/{image_id}/file",
                              headers=env.headers(Range="bytes=-10"))
        assert tail.status_code == 206 and tail.data == data[-10:]
        unsatisfiable = env.client.get(f"/v2/images/{image_id}/file",
                                       headers=env.headers(Range=f"bytes={len(data)}-"))
        assert unsatisfiable.status_code == 416

        again = env.upload(image_id, b"more")
        assert again.status_code == 409
        assert env.client.delete(f"/v2/images/{image_id}",
                                 headers=env.headers("other")).status_code == 404
        assert env.client.delete(f"/v2/images/{image_id}",
                                 headers=env.headers()).status_code == 204
        assert not env.store.exists(image_id)
        assert env.client.get(f"/v2/images/{image_id}",
                              headers=env.headers()).status_code == 404
        assert env.client.delete(f"/v2/images/{image_id}",
                                 headers=env.headers()).status_code == 404

    def test_upload_rules(self, env: ImageEnv) -> None:
        bare = env.create(name="no-formats")
        resp = env.upload(bare["id"], b"data")
        assert resp.status_code == 400 and "disk_format" in resp.json["message"]
        image = env.create(disk_format="qcow2", container_format="bare")
        wrong_type = env.client.put(f"/v2/images/{image['id']}/file", data=b"x",
                                    headers=env.headers(**{"Content-Type": "text/plain"}))
        assert wrong_type.status_code == 415
        public = env.create("admin", visibility="public", disk_format="raw",
                            container_format="bare")
        assert env.upload(public["id"], b"x").status_code == 403
        header = qcow2_header(2 ** 30)
        assert env.upload(image["id"], header).status_code == 204
        shown = env.client.get(f"/v2/images/{image['id']}", headers=env.headers()).json
        assert (shown["size"], shown["virtual_size"]) == (len(header), 2 ** 30)
        empty = env.create(disk_format="raw", container_format="bare")
        assert env.upload(empty["id"], b"").status_code == 204
        shown = env.client.get(f"/v2/images/{empty['id']}", headers=env.headers()).json
        assert (shown["status"], shown["size"]) == ("active", 0)

    def test_protected_images_cannot_be_deleted(self, env: ImageEnv) -> None:
        image = env.create(protected=True)
        resp = env.client.delete(f"/v2/images/{image['id']}", headers=env.headers())
        assert resp.status_code == 403 and "protected" in resp.json["message"]
        env.patch(image["id"], [{"op": "replace", "path": "/protected", "value": False}])
        assert env.client.delete(f"/v2/images/{image['id']}",
                                 headers=env.headers()).status_code == 204

    def test_tags(self, env: ImageEnv) -> None:
        image = env.create(tags=["a"])
        url = f"/v2/images/{image['id']}/tags"
        assert env.client.put(f"{url}/b", headers=env.headers()).status_code == 204
        assert env.client.put(f"{url}/b", headers=env.headers()).status_code == 204
        assert env.client.delete(f"{url}/a", headers=env.headers()).status_code == 204
        assert env.client.delete(f"{url}/a", headers=env.headers()).status_code == 404
        shown = env.client.get(f"/v2/images/{image['id']}", headers=env.headers()).json
        assert shown["tags"] == ["b"]

    def test_deactivate_and_reactivate(self, env: ImageEnv) -> None:
        image = env.create("admin", visibility="public", disk_format="raw",
                           container_format="bare")
        url = f"/v2/images/{image['id']}"
        assert env.client.post(f"{url}/actions/deactivate",
                               headers=env.headers("admin")).status_code == 409  # queued
        env.upload(image["id"], b"data", who="admin")
        assert env.client.post(f"{url}/actions/deactivate",
                               headers=env.headers()).status_code == 403  # not the owner
        for _ in range(2):
            assert env.client.post(f"{url}/actions/deactivate",
                                   headers=env.headers("admin")).status_code == 204
        assert env.client.get(url, headers=env.headers()).json["status"] == "deactivated"
        assert env.client.get(f"{url}/file", headers=env.headers()).status_code == 403
        assert env.client.get(f"{url}/file", headers=env.headers("admin")).data == b"data"
        with pytest.raises(ImageNotActive):
            env.service.get(env.context("demo"), image["id"])
        assert env.client.post(f"{url}/actions/reactivate",
                               headers=env.headers("admin")).status_code == 204
        assert env.client.get(f"{url}/file", headers=env.headers()).data == b"data"

    def test_failed_upload_returns_to_queued(self, env: ImageEnv) -> None:
        image = env.create(disk_format="raw", container_format="bare")

        def broken() -> Iterator[bytes]:
            yield b"partial"
            raise ConnectionError("client went away")

        with pytest.raises(ConnectionError):
            env.service.upload(env.context("demo"), image["id"], broken())
        assert env.service.show(env.context("demo"), image["id"])["status"] == "queued"
        assert not env.store.exists(image["id"])
        assert os.listdir(env.store.store_dir) == []
        env.service.upload(env.context("demo"), image["id"], [b"complete"])
        assert env.service.show(env.context("demo"), image["id"])["status"] == "active"

    def test_second_upload_while_saving_is_409(self, env: ImageEnv) -> None:
        image = env.create(disk_format="raw", container_format="bare")
        ctx = env.context("demo")
        seen: list[int] = []

        def racing() -> Iterator[bytes]:
            yield b"first"
            seen.append(env.upload(image["id"], b"intruder").status_code)
            yield b"second"

        env.service.upload(ctx, image["id"], racing())
        assert seen == [409]
        assert b"".join(env.store.iter_data(image["id"])) == b"firstsecond"

    def test_image_deleted_during_upload(self, env: ImageEnv) -> None:
        image = env.create(disk_format="raw", container_format="bare")
        ctx = env.context("demo")

        def deleting() -> Iterator[bytes]:
            yield b"first"
            assert env.service.show(ctx, image["id"])["status"] == "saving"
            env.service.delete(ctx, image["id"])
            yield b"second"

        with pytest.raises(ImageGone):
            env.service.upload(ctx, image["id"], deleting())
        assert not env.store.exists(image["id"])
        with pytest.raises(exception.ImageNotFound):
            env.service.show(ctx, image["id"])

    def test_service_get_for_compute(self, env: ImageEnv) -> None:
        image = env.create(name="boot", disk_format="raw", container_format="bare",
                           min_ram=128, os_distro="cirros")
        demo = env.context("demo")
        with pytest.raises(ImageNotActive) as raised:
            env.service.get(demo, image["id"])
        assert raised.value.code == 400
        env.upload(image["id"], b"bootable")
        meta = env.service.get(demo, image["id"])
        assert (meta["id"], meta["name"], meta["status"]) == (image["id"], "boot", "active")
        assert (meta["min_ram"], meta["min_disk"], meta["size"]) == (128, 0, 8)
        assert meta["properties"] == {"os_distro": "cirros"}
        assert meta["disk_format"] == "raw" and meta["owner"] == env.projects["demo"]
        with pytest.raises(exception.ImageNotFound):
            env.service.get(env.context("other"), image["id"])  # shared: owner only
        assert env.service.get(env.context("admin"), image["id"])["id"] == image["id"]
        for missing in (str(uuid.uuid4()), "not-a-uuid"):
            with pytest.raises(exception.ImageNotFound):
                env.service.get(demo, missing)


class TestImagesOnSQLite(_ImageScenarios):
    @pytest.fixture
    def env(self, tmp_path: Any, sqlite_url: str) -> Iterator[ImageEnv]:
        yield from build_env(tmp_path, sqlite_url)


class TestImagesOnServerDatabases(_ImageScenarios):
    """The same tests on PostgreSQL and MariaDB (skipped when unreachable)."""

    @pytest.fixture
    def env(self, tmp_path: Any, empty_server_database: str) -> Iterator[ImageEnv]:
        yield from build_env(tmp_path, empty_server_database)


# -- end to end with openstacksdk ---------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served_stack(tmp_path: Any, sqlite_url: str) -> Iterator[tuple[str, Any]]:
    """Identity and image behind waitress on a free port, as the API process mounts them."""
    from stratus.api.server import ThreadedServer

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    conf = make_conf(tmp_path, sqlite_url, public_url=url)
    db = Database(sqlite_url)
    bootstrap(db, password="sdk-secret")
    provider = TokenProvider.from_conf(conf, db)
    authenticate = make_authenticator(provider, db)
    app = wsgi.PrefixDispatcher({
        "/identity": build_identity_app(conf, db, provider, authenticate=authenticate),
        "/image": build_image_app(conf, db, FileStore(conf.image.store_dir), authenticate),
    })
    server = ThreadedServer(app, host="127.0.0.1", port=port, threads=4)
    server.start()
    try:
        yield url, conf
    finally:
        server.stop(timeout=5)
        db.dispose()


def test_openstacksdk_end_to_end(served_stack: tuple[str, Any]) -> None:
    import openstack

    url, conf = served_stack
    conn = openstack.connect(auth_url=f"{url}/identity", username="admin",
                             password="sdk-secret", project_name="admin",
                             user_domain_name="Default", project_domain_name="Default",
                             region_name="RegionOne")
    try:
        token = conn.authorize()
        assert conn.image.get_endpoint().rstrip("/") == f"{url}/image/v2"
        data = os.urandom(3 * 1024 * 1024 + 17)
        created = conn.image.create_image("sdk-image", data=data, disk_format="raw",
                                          container_format="bare", os_distro="cirros")
        image = conn.image.get_image(created.id)
        assert (image.name, image.status, image.size) == ("sdk-image", "active", len(data))
        assert image.checksum == hashlib.md5(data).hexdigest()
        assert image.hash_value == hashlib.sha512(data).hexdigest()
        assert image.os_distro == "cirros"
        assert image.properties["owner_specified.openstack.object"] == "images/sdk-image"
        assert [i.id for i in conn.image.images(name="sdk-image")] == [created.id]
        downloaded = conn.image.download_image(created.id)
        assert downloaded.content == data  # the SDK also checked the sha512

        conn.image.update_image(created.id, name="renamed", min_ram=64)
        assert conn.image.find_image("renamed").min_ram == 64

        # A chunked upload (no Content-Length) through the real server.
        raw = conn.image.create_image("chunked", disk_format="raw", container_format="bare",
                                      allow_duplicates=True)
        pieces = [os.urandom(100_000) for _ in range(5)]
        resp = requests.put(f"{url}/image/v2/images/{raw.id}/file", data=iter(pieces),
                            headers={"X-Auth-Token": token,
                                     "Content-Type": "application/octet-stream"},
                            timeout=30)
        assert resp.status_code == 204, resp.text
        assert conn.image.get_image(raw.id).checksum == hashlib.md5(
            b"".join(pieces)).hexdigest()

        for image_id in (created.id, raw.id):
            conn.image.delete_image(image_id)
        assert list(conn.image.images()) == []
    finally:
        conn.close()
