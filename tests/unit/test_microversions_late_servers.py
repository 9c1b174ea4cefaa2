"""Microversions 2.42-2.71, the server changes: each checked at the version
before it and at the version itself, on the in-process cloud (three fake
hosts). Every request names its version explicitly."""
from __future__ import annotations

import base64
from typing import Any

import pytest

from stratus.api.compute.views import servers as views_servers
from stratus.db import instances as db_instances
from stratus.db import tags as db_tags
from tests import compute_schemas as S
from tests.cloud import InProcessCloud
from tests.versioned import at, call, fault_message, module_cloud, module_image

UUID = "6b0a3b3c-8d55-4f0c-9d3e-5a4b9b7f1e01"
VOLUME = "0e3b0c52-7f1a-4c1e-8d8e-2d7c2b8c9a11"
HOSTS = ("host1", "host2", "host3")


cloud = module_cloud("mvlate", HOSTS)
image = module_image("mvlate")


def boot(cloud: InProcessCloud, image: str, name: str, **extra: Any) -> dict[str, Any]:
    return cloud.boot(name, image=image, **extra)


def create(cloud: InProcessCloud, image: str, version: str, status: int,
           **server: Any) -> Any:
    """POST /servers at ``version`` (networks "none" from 2.37); a created
    server is deleted again unless the caller keeps it (``keep=True``)."""
    keep = server.pop("keep", False)
    body = {"server": {"name": server.pop("name", "late"), "flavorRef": "1",
                       "imageRef": image, "networks": "none", **server}}
    resp = call(cloud, version, "POST", "/servers", body, status=status)
    if status == 202 and not keep:
        cloud.compute("DELETE", f"/servers/{resp.get_json()['server']['id']}")
    return resp


def action(cloud: InProcessCloud, version: str, server_id: str, body: Any,
           status: int | None = 202) -> Any:
    return call(cloud, version, "POST", f"/servers/{server_id}/action", body, status=status)


def server_names(cloud: InProcessCloud) -> set[str]:
    listed = call(cloud, "2.1", "GET", "/servers").get_json()["servers"]
    return {s["name"] for s in listed}


# -- 2.42: device tags at create, again -----------------------------------------------

BOOT_BDM = {"source_type": "image", "destination_type": "local", "boot_index": 0}


def test_2_42_device_tags_on_networks_and_mappings(cloud: InProcessCloud, image: str) -> None:
    tagged_net = [{"uuid": UUID, "tag": "nic1"}]
    bdm = [dict(BOOT_BDM, uuid=image, tag="disk1")]
    assert "'tag' was unexpected" in fault_message(
        create(cloud, image, "2.41", 400, networks=tagged_net))
    assert "'tag' was unexpected" in fault_message(
        create(cloud, image, "2.41", 400, block_device_mapping_v2=bdm))
    create(cloud, image, "2.42", 202, networks=tagged_net)
    create(cloud, image, "2.42", 202, block_device_mapping_v2=bdm)
    create(cloud, image, "2.42", 202, networks=tagged_net, block_device_mapping_v2=bdm)
    # Still Nova's tag type, and 2.37's strict network uuid.
    create(cloud, image, "2.42", 400, networks=[{"uuid": UUID, "tag": "a/b"}])
    create(cloud, image, "2.42", 400, block_device_mapping_v2=[dict(bdm[0], tag="x" * 61)])
    assert "is not a 'uuid'" in fault_message(
        create(cloud, image, "2.42", 400, networks=[{"uuid": "br-" + UUID, "tag": "n"}]))
    create(cloud, image, "2.64", 202, networks=tagged_net, block_device_mapping_v2=bdm)


# -- 2.45: createImage's body --------------------------------------------------------------

def test_2_45_create_image_answers_the_image_id(cloud: InProcessCloud, image: str) -> None:
    sid = boot(cloud, image, "snap-late")["id"]
    old = action(cloud, "2.44", sid, {"createImage": {"name": "snap-244"}})
    assert old.get_data() == b""
    old_id = old.headers["Location"].rsplit("/", 1)[-1]
    assert old.headers["Location"].endswith(f"/image/v2/images/{old_id}")
    cloud.wait_for(sid, "ACTIVE")
    new = action(cloud, "2.45", sid, {"createImage": {"name": "snap-245",
                                                      "metadata": {"k": "v"}}})
    assert "Location" not in new.headers
    body = new.get_json()
    S.validate(S.CREATE_IMAGE_V245, body)
    assert body["image_id"] != old_id
    cloud.wait_for(sid, "ACTIVE")
    shown = cloud.request("GET", f"/image/v2/images/{body['image_id']}").get_json()
    assert shown["name"] == "snap-245" and shown["k"] == "v"
    # Bad input is still a 400 with nothing made.
    action(cloud, "2.45", sid, {"createImage": {}}, status=400)


# -- 2.47: the embedded flavor ---------------------------------------------------------------

@pytest.fixture(scope="module")
def spec_flavor(cloud: InProcessCloud) -> str:
    call(cloud, "2.1", "POST", "/flavors", {"flavor": {
        "name": "late.specs", "ram": 64, "vcpus": 1, "disk": 1, "swap": 16,
        "OS-FLV-EXT-DATA:ephemeral": 0, "id": "late-specs"}})
    call(cloud, "2.1", "POST", "/flavors/late-specs/os-extra_specs",
         {"extra_specs": {"hw:cpu_policy": "shared", "quota:cpu_shares": "512"}})
    return "late-specs"


EXPECTED_FLAVOR = {"original_name": "late.specs", "vcpus": 1, "ram": 64, "disk": 1,
                   "ephemeral": 0, "swap": 16,
                   "extra_specs": {"hw:cpu_policy": "shared", "quota:cpu_shares": "512"}}


def test_2_47_show_and_detail_embed_the_flavor(cloud: InProcessCloud, image: str,
                                               spec_flavor: str) -> None:
    sid = boot(cloud, image, "embedded", flavor=spec_flavor)["id"]
    old = call(cloud, "2.46", "GET", f"/servers/{sid}").get_json()
    S.validate(S.GET_SERVER_V226, old)
    assert old["server"]["flavor"]["id"] == spec_flavor
    new = call(cloud, "2.47", "GET", f"/servers/{sid}").get_json()
    S.validate(S.GET_SERVER_V247, new)
    with pytest.raises(Exception):
        S.validate(S.GET_SERVER_V226, new)  # no id, no links
    assert new["server"]["flavor"] == EXPECTED_FLAVOR
    detail = call(cloud, "2.47", "GET", "/servers/detail?name=^embedded$").get_json()
    S.validate(S.LIST_SERVERS_DETAIL_V247, detail)
    assert [s["flavor"] for s in detail["servers"]] == [EXPECTED_FLAVOR]
    # The instance's copy: later changes to the flavor's specs do not show.
    call(cloud, "2.1", "PUT", f"/flavors/{spec_flavor}/os-extra_specs/hw:cpu_policy",
         {"hw:cpu_policy": "dedicated"})
    again = call(cloud, "2.47", "GET", f"/servers/{sid}").get_json()["server"]["flavor"]
    assert again == EXPECTED_FLAVOR
    call(cloud, "2.1", "PUT", f"/flavors/{spec_flavor}/os-extra_specs/hw:cpu_policy",
         {"hw:cpu_policy": "shared"})


def test_2_47_update_and_rebuild_answers_embed_it_create_does_not(
        cloud: InProcessCloud, image: str, spec_flavor: str) -> None:
    resp = create(cloud, image, "2.47", 202, name="embedded2", flavorRef=spec_flavor,
                  keep=True)
    created = resp.get_json()
    S.validate(S.CREATE_SERVER, created)
    assert "flavor" not in created["server"]
    sid = created["server"]["id"]
    cloud.wait_for(sid, "ACTIVE")
    updated = call(cloud, "2.47", "PUT", f"/servers/{sid}",
                   {"server": {"name": "embedded2b"}}).get_json()
    S.validate(S.UPDATE_SERVER_V247, updated)
    assert updated["server"]["flavor"] == EXPECTED_FLAVOR
    old_update = call(cloud, "2.46", "PUT", f"/servers/{sid}",
                      {"server": {"name": "embedded2"}}).get_json()
    S.validate(S.UPDATE_SERVER_V226, old_update)
    rebuilt = action(cloud, "2.47", sid, {"rebuild": {"imageRef": image}}).get_json()
    S.validate(S.REBUILD_SERVER_V247, rebuilt)
    assert rebuilt["server"]["flavor"] == EXPECTED_FLAVOR
    cloud.wait_for(sid, "ACTIVE")
    old_rebuild = action(cloud, "2.46", sid, {"rebuild": {"imageRef": image}}).get_json()
    S.validate(S.REBUILD_SERVER_V226, old_rebuild)
    cloud.wait_for(sid, "ACTIVE")


def test_2_47_extra_specs_only_where_policy_allows(cloud: InProcessCloud, image: str,
                                                   spec_flavor: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    sid = boot(cloud, image, "nospecs", flavor=spec_flavor)["id"]
    allowed = views_servers.can

    def deny_specs(req: Any, rule: str, target: Any = None) -> bool:
        return rule != views_servers.POLICY_FLAVOR_EXTRA_SPECS and allowed(req, rule, target)

    monkeypatch.setattr(views_servers, "can", deny_specs)
    shown = call(cloud, "2.47", "GET", f"/servers/{sid}").get_json()
    S.validate(S.GET_SERVER_V247, shown)
    expected = {k: v for k, v in EXPECTED_FLAVOR.items() if k != "extra_specs"}
    assert shown["server"]["flavor"] == expected


# -- 2.52: tags at create -------------------------------------------------------------------

def test_2_52_tags_at_create(cloud: InProcessCloud, image: str) -> None:
    resp = create(cloud, image, "2.51", 400, name="tagged-late", tags=["a"])
    assert "'tags' was unexpected" in fault_message(resp)
    resp = create(cloud, image, "2.52", 202, name="tagged-late", tags=["web", "db", "web"],
                  keep=True)
    sid = resp.get_json()["server"]["id"]
    assert db_tags.tags_get(cloud.db, sid) == ["db", "web"]
    shown = call(cloud, "2.52", "GET", f"/servers/{sid}").get_json()
    S.validate(S.GET_SERVER_V247, shown)
    assert shown["server"]["tags"] == ["db", "web"]
    assert call(cloud, "2.52", "GET", f"/servers/{sid}/tags").get_json() == {
        "tags": ["db", "web"]}
    listed = call(cloud, "2.52", "GET", "/servers?tags=web").get_json()["servers"]
    assert sid in [s["id"] for s in listed]
    # No tags given: none stored; an empty list is fine too.
    plain = create(cloud, image, "2.52", 202, name="untagged-late", tags=[], keep=True)
    assert db_tags.tags_get(cloud.db, plain.get_json()["server"]["id"]) == []


@pytest.mark.parametrize("tags", [
    ["a/b"], ["a,b"], [""], ["x" * 61], [f"t{i}" for i in range(51)], "web", [1],
])
def test_2_52_bad_tags_create_nothing(cloud: InProcessCloud, image: str, tags: Any) -> None:
    resp = create(cloud, image, "2.52", 400, name="badtags-late", tags=tags)
    assert fault_message(resp).startswith("Invalid input for field/attribute tags.")
    assert "badtags-late" not in server_names(cloud)


def test_2_52_fifty_tags_and_multi_create(cloud: InProcessCloud, image: str) -> None:
    fifty = [f"t{i:02d}" for i in range(50)]
    resp = create(cloud, image, "2.52", 202, name="fifty-late", tags=fifty,
                  min_count=2, return_reservation_id=True, keep=True)
    reservation = resp.get_json()["reservation_id"]
    servers = call(cloud, "2.52", "GET",
                   f"/servers/detail?reservation_id={reservation}").get_json()["servers"]
    assert len(servers) == 2
    assert all(s["tags"] == fifty for s in servers)


# -- 2.54: key_name on rebuild -----------------------------------------------------------------

def test_2_54_rebuild_sets_and_unsets_the_key(cloud: InProcessCloud, image: str) -> None:
    keypair = call(cloud, "2.1", "POST", "/os-keypairs",
                   {"keypair": {"name": "late-key"}}).get_json()["keypair"]
    sid = boot(cloud, image, "keyed")["id"]
    resp = action(cloud, "2.53", sid, {"rebuild": {"imageRef": image, "key_name": "late-key"}},
                  status=400)
    assert "'key_name' was unexpected" in fault_message(resp)
    old = action(cloud, "2.53", sid, {"rebuild": {"imageRef": image}}).get_json()
    assert "key_name" not in old["server"]
    cloud.wait_for(sid, "ACTIVE")
    new = action(cloud, "2.54", sid, {"rebuild": {"imageRef": image,
                                                  "key_name": "late-key"}}).get_json()
    S.validate(S.REBUILD_SERVER_V254, new)
    assert new["server"]["key_name"] == "late-key"
    stored = db_instances.instance_get(cloud.db, sid)
    assert stored["key_name"] == "late-key" and stored["key_data"] == keypair["public_key"]
    shown = cloud.wait_for(sid, "ACTIVE")
    assert shown["key_name"] == "late-key"
    # An unknown key is Nova's 400, and the server is left as it was.
    resp = action(cloud, "2.54", sid, {"rebuild": {"imageRef": image, "key_name": "nope"}},
                  status=400)
    assert fault_message(resp) == "Invalid key_name provided."
    after = db_instances.instance_get(cloud.db, sid)
    assert after["key_name"] == "late-key" and after["task_state"] is None
    action(cloud, "2.54", sid, {"rebuild": {"imageRef": image, "key_name": ""}}, status=400)
    action(cloud, "2.54", sid, {"rebuild": {"imageRef": image, "key_name": " k"}}, status=400)
    # Not given: kept; null: dropped.
    kept = action(cloud, "2.54", sid, {"rebuild": {"imageRef": image}}).get_json()
    assert kept["server"]["key_name"] == "late-key"
    cloud.wait_for(sid, "ACTIVE")
    dropped = action(cloud, "2.54", sid, {"rebuild": {"imageRef": image,
                                                      "key_name": None}}).get_json()
    S.validate(S.REBUILD_SERVER_V254, dropped)
    assert dropped["server"]["key_name"] is None
    stored = db_instances.instance_get(cloud.db, sid)
    assert stored["key_name"] is None and stored["key_data"] is None
    cloud.wait_for(sid, "ACTIVE")


# -- 2.56: migrate to a host ----------------------------------------------------------------------

def _host(cloud: InProcessCloud, sid: str) -> str:
    return call(cloud, "2.1", "GET", f"/servers/{sid}").get_json()["server"][
        "OS-EXT-SRV-ATTR:host"]


def test_2_56_migrate_body_checks(cloud: InProcessCloud, image: str) -> None:
    sid = boot(cloud, image, "mover-checks")["id"]
    source = _host(cloud, sid)
    other = next(h for h in HOSTS if h != source)
    action(cloud, "2.55", sid, {"migrate": {"host": other}}, status=400)
    resp = action(cloud, "2.56", sid, {"migrate": {"host": source}}, status=400)
    assert fault_message(resp) == "Cannot migrate to the host where the server exists."
    resp = action(cloud, "2.56", sid, {"migrate": {"host": "nowhere"}}, status=400)
    assert fault_message(resp) == "Compute host nowhere could not be found."
    for bad in ({"host": "a b"}, {"host": ""}, {"host": 3}, {"hots": other}, "host1", []):
        action(cloud, "2.56", sid, {"migrate": bad}, status=400)
    # Nothing moved, nothing recorded.
    stored = db_instances.instance_get(cloud.db, sid)
    assert stored["task_state"] is None and stored["host"] == source
    actions = call(cloud, "2.56", "GET", f"/servers/{sid}/os-instance-actions").get_json()
    assert [a["action"] for a in actions["instanceActions"]] == ["create"]


def test_2_56_migrate_to_the_named_host(cloud: InProcessCloud, image: str) -> None:
    for name in ("mover-a", "mover-b"):
        sid = boot(cloud, image, name)["id"]
        source = _host(cloud, sid)
        # The last host in order that is not the source: not what a plain
        # migration would always pick.
        target = [h for h in HOSTS if h != source][-1 if name == "mover-a" else 0]
        action(cloud, "2.56", sid, {"migrate": {"host": target}})
        shown = cloud.wait_for(sid, "VERIFY_RESIZE")
        assert shown["OS-EXT-SRV-ATTR:host"] == target
        action(cloud, "2.56", sid, {"confirmResize": None}, status=204)
        cloud.wait_for(sid, "ACTIVE")


def test_2_56_a_disabled_host_is_no_valid_host(cloud: InProcessCloud, image: str) -> None:
    """Nova's filters still run for a requested destination (its compute
    filter here): a disabled host fails the migration (no valid host), the
    server stays where it was."""
    from stratus.db import resizes as db_resizes

    sid = boot(cloud, image, "mover-disabled")["id"]
    source = _host(cloud, sid)
    target = next(h for h in HOSTS if h != source)
    cloud.set_compute_disabled(target, True)
    try:
        action(cloud, "2.56", sid, {"migrate": {"host": target}})
        cloud.wait_for(sid, "ACTIVE")
    finally:
        cloud.set_compute_disabled(target, False)
    assert _host(cloud, sid) == source
    [migration] = db_resizes.migrations_for_instance(cloud.db, sid)
    assert migration["status"] == "error"


def test_2_56_naming_the_host_has_its_own_rule(cloud: InProcessCloud, image: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from stratus import exception
    from stratus.api.compute import common, server_actions

    allowed = common.authorize

    def deny_host(req: Any, rule: str, target: Any = None) -> None:
        if rule == server_actions.POLICY_MIGRATE_HOST:
            raise exception.Forbidden(f"Policy doesn't allow {rule} to be performed.")
        allowed(req, rule, target)

    monkeypatch.setattr(common, "authorize", deny_host)
    sid = boot(cloud, image, "mover-policy")["id"]
    other = next(h for h in HOSTS if h != _host(cloud, sid))
    resp = action(cloud, "2.56", sid, {"migrate": {"host": other}}, status=403)
    assert "migrate:host" in fault_message(resp)
    assert db_instances.instance_get(cloud.db, sid)["task_state"] is None
    action(cloud, "2.56", sid, {"migrate": {"host": None}})
    cloud.wait_for(sid, "VERIFY_RESIZE")
    action(cloud, "2.56", sid, {"revertResize": None})
    cloud.wait_for(sid, "ACTIVE")


def test_2_56_migrate_without_a_host(cloud: InProcessCloud, image: str) -> None:
    for body in ({"migrate": None}, {"migrate": {}}, {"migrate": {"host": None}}):
        sid = boot(cloud, image, "mover-any")["id"]
        source = _host(cloud, sid)
        action(cloud, "2.56", sid, body)
        shown = cloud.wait_for(sid, "VERIFY_RESIZE")
        assert shown["OS-EXT-SRV-ATTR:host"] != source
        action(cloud, "2.56", sid, {"revertResize": None})
        cloud.wait_for(sid, "ACTIVE")
        cloud.compute("DELETE", f"/servers/{sid}")


# -- 2.57: personality gone, user_data on rebuild --------------------------------------------------

USER_DATA = base64.b64encode(b"#!/bin/sh\necho late\n").decode()


def test_2_57_personality_is_refused(cloud: InProcessCloud, image: str) -> None:
    files = [{"path": "/etc/motd", "contents": base64.b64encode(b"hi").decode()}]
    create(cloud, image, "2.56", 202, personality=files)
    resp = create(cloud, image, "2.57", 400, name="personal-late", personality=files)
    assert "'personality' was unexpected" in fault_message(resp)
    assert "personal-late" not in server_names(cloud)
    sid = boot(cloud, image, "personal-rebuild")["id"]
    action(cloud, "2.56", sid, {"rebuild": {"imageRef": image, "personality": files}})
    cloud.wait_for(sid, "ACTIVE")
    resp = action(cloud, "2.57", sid, {"rebuild": {"imageRef": image, "personality": files}},
                  status=400)
    assert "'personality' was unexpected" in fault_message(resp)


def test_2_57_rebuild_user_data(cloud: InProcessCloud, image: str) -> None:
    sid = boot(cloud, image, "userdata", user_data=base64.b64encode(b"old").decode())["id"]
    resp = action(cloud, "2.56", sid, {"rebuild": {"imageRef": image, "user_data": USER_DATA}},
                  status=400)
    assert "'user_data' was unexpected" in fault_message(resp)
    old = action(cloud, "2.56", sid, {"rebuild": {"imageRef": image}}).get_json()
    assert "user_data" not in old["server"]
    cloud.wait_for(sid, "ACTIVE")
    # Not given: kept, and shown in the answer.
    kept = action(cloud, "2.57", sid, {"rebuild": {"imageRef": image}}).get_json()
    S.validate(S.REBUILD_SERVER_V257, kept)
    assert kept["server"]["user_data"] == base64.b64encode(b"old").decode()
    cloud.wait_for(sid, "ACTIVE")
    new = action(cloud, "2.57", sid, {"rebuild": {"imageRef": image,
                                                  "user_data": USER_DATA}}).get_json()
    S.validate(S.REBUILD_SERVER_V257, new)
    assert new["server"]["user_data"] == USER_DATA
    cloud.wait_for(sid, "ACTIVE")
    shown = call(cloud, "2.57", "GET", f"/servers/{sid}").get_json()["server"]
    assert shown["OS-EXT-SRV-ATTR:user_data"] == USER_DATA
    for bad in ("not base64!", "QQ=", "QUFB" * 16384, 5, ["QQ=="]):
        resp = action(cloud, "2.57", sid, {"rebuild": {"imageRef": image, "user_data": bad}},
                      status=400)
        assert fault_message(resp).startswith("Invalid input for field/attribute user_data.")
    assert db_instances.instance_get(cloud.db, sid)["user_data"] == USER_DATA
    unset = action(cloud, "2.57", sid, {"rebuild": {"imageRef": image,
                                                    "user_data": None}}).get_json()
    assert unset["server"]["user_data"] is None
    assert db_instances.instance_get(cloud.db, sid)["user_data"] is None
    cloud.wait_for(sid, "ACTIVE")


# -- 2.63: trusted image certificates ------------------------------------------------------------

CERTS = ["0b5d2c72-12cc-4ba6-a8d8-4ff1a1b8e5e5", "674736e3-f25c-405c-8362-bbf991e0ce0a"]


def test_2_63_certificates_at_create_and_in_the_views(cloud: InProcessCloud,
                                                      image: str) -> None:
    resp = create(cloud, image, "2.62", 400, trusted_image_certificates=CERTS)
    assert "'trusted_image_certificates' was unexpected" in fault_message(resp)
    sid = create(cloud, image, "2.63", 202, name="trusted-late",
                 trusted_image_certificates=CERTS, keep=True).get_json()["server"]["id"]
    cloud.wait_for(sid, "ACTIVE")
    shown = call(cloud, "2.63", "GET", f"/servers/{sid}").get_json()
    S.validate(S.GET_SERVER_V263, shown)
    assert shown["server"]["trusted_image_certificates"] == CERTS
    old = call(cloud, "2.62", "GET", f"/servers/{sid}").get_json()
    S.validate(S.GET_SERVER_V247, old)
    assert "trusted_image_certificates" not in old["server"]
    plain = boot(cloud, image, "untrusted-late")["id"]
    detail = call(cloud, "2.63", "GET", "/servers/detail?name=trusted-late").get_json()
    S.validate(S.LIST_SERVERS_DETAIL_V263, detail)
    assert {s["name"]: s["trusted_image_certificates"] for s in detail["servers"]} == {
        "trusted-late": CERTS, "untrusted-late": None}
    updated = call(cloud, "2.63", "PUT", f"/servers/{plain}",
                   {"server": {"description": "d"}}).get_json()
    S.validate(S.UPDATE_SERVER_V263, updated)
    assert updated["server"]["trusted_image_certificates"] is None
    old_update = call(cloud, "2.62", "PUT", f"/servers/{plain}",
                      {"server": {"description": "d"}}).get_json()
    assert "trusted_image_certificates" not in old_update["server"]
    # null at create is no certificates.
    nulled = create(cloud, image, "2.63", 202, name="nullcerts-late",
                    trusted_image_certificates=None, keep=True).get_json()["server"]["id"]
    assert db_instances.instance_get(cloud.db, nulled)["trusted_certs"] is None


@pytest.mark.parametrize("certs", [
    [], ["a", "a"], [""], [f"c{i}" for i in range(51)], "abc", [1], {"a": 1},
])
def test_2_63_bad_certificates(cloud: InProcessCloud, image: str, certs: Any) -> None:
    expected = "Invalid input for field/attribute trusted_image_certificates."
    resp = create(cloud, image, "2.63", 400, name="badcerts-late",
                  trusted_image_certificates=certs)
    assert fault_message(resp).startswith(expected)
    assert "badcerts-late" not in server_names(cloud)
    sid = boot(cloud, image, "badcerts-rebuild")["id"]
    resp = action(cloud, "2.63", sid, {"rebuild": {"imageRef": image,
                                                   "trusted_image_certificates": certs}},
                  status=400)
    assert fault_message(resp).startswith(expected)
    cloud.compute("DELETE", f"/servers/{sid}")


def test_2_63_certificates_refused_for_a_boot_from_volume(cloud: InProcessCloud,
                                                          image: str) -> None:
    bdm = [{"source_type": "volume", "destination_type": "volume", "boot_index": 0,
            "uuid": VOLUME}]
    resp = create(cloud, image, "2.63", 400, name="bfv-late", imageRef="",
                  block_device_mapping_v2=bdm, trusted_image_certificates=CERTS)
    assert fault_message(resp) == ("Image certificate validation is not supported when "
                                   "booting from volume")


def test_2_63_rebuild_sets_and_unsets_certificates(cloud: InProcessCloud, image: str) -> None:
    sid = boot(cloud, image, "trusted-rebuild")["id"]
    resp = action(cloud, "2.62", sid, {"rebuild": {"imageRef": image,
                                                   "trusted_image_certificates": CERTS}},
                  status=400)
    assert "'trusted_image_certificates' was unexpected" in fault_message(resp)
    old = action(cloud, "2.62", sid, {"rebuild": {"imageRef": image}}).get_json()
    S.validate(S.REBUILD_SERVER_V257, old)
    cloud.wait_for(sid, "ACTIVE")
    new = action(cloud, "2.63", sid, {"rebuild": {"imageRef": image,
                                                  "trusted_image_certificates": CERTS}})
    S.validate(S.REBUILD_SERVER_V263, new.get_json())
    assert new.get_json()["server"]["trusted_image_certificates"] == CERTS
    cloud.wait_for(sid, "ACTIVE")
    kept = action(cloud, "2.63", sid, {"rebuild": {"imageRef": image}}).get_json()
    assert kept["server"]["trusted_image_certificates"] == CERTS
    cloud.wait_for(sid, "ACTIVE")
    unset = action(cloud, "2.63", sid, {"rebuild": {"imageRef": image,
                                                    "trusted_image_certificates": None}})
    S.validate(S.REBUILD_SERVER_V263, unset.get_json())
    assert unset.get_json()["server"]["trusted_image_certificates"] is None
    assert db_instances.instance_get(cloud.db, sid)["trusted_certs"] is None
    cloud.wait_for(sid, "ACTIVE")


# -- 2.43/2.44/2.48/2.49/2.51/2.60: APIs Stratus does not have -------------------------------------

@pytest.mark.parametrize("method,path", [
    ("GET", "/os-hosts"),                                   # 2.43 deprecates it
    ("GET", f"/servers/{UUID}/diagnostics"),                # 2.48
    ("GET", f"/servers/{UUID}/os-volume_attachments"),      # 2.49, 2.60
    ("POST", "/os-server-external-events"),                 # 2.51
    ("GET", f"/servers/{UUID}/os-virtual-interfaces"),      # 2.44
])
def test_apis_of_other_late_versions_are_absent(cloud: InProcessCloud, method: str,
                                                path: str) -> None:
    assert cloud.compute(method, path, headers=at("2.64")).status_code == 404


@pytest.mark.parametrize("name", ["addFixedIp", "removeFixedIp", "addFloatingIp",
                                  "removeFloatingIp"])
def test_2_44_network_actions_are_absent(cloud: InProcessCloud, name: str) -> None:
    resp = call(cloud, "2.64", "POST", f"/servers/{UUID}/action", {name: {}}, status=400)
    assert fault_message(resp) == f"There is no such action: {name}"


# -- 2.67: volume_type on block device mappings -------------------------------------------

def test_2_67_volume_type_on_mappings(cloud: InProcessCloud, image: str) -> None:
    local = {"source_type": "image", "destination_type": "local", "boot_index": 0,
             "uuid": image}
    typed = {**local, "volume_type": "fast"}
    before = create(cloud, image, "2.66", 400, block_device_mapping_v2=[typed])
    assert "volume_type" in fault_message(before)  # an unknown property before 2.67
    resp = create(cloud, image, "2.67", 400, block_device_mapping_v2=[typed])
    assert fault_message(resp) == ("Specifying a volume_type with destination_type=local "
                                   "is not supported.")
    long_name = {**local, "volume_type": "x" * 256}
    assert "volume_type" in fault_message(
        create(cloud, image, "2.67", 400, block_device_mapping_v2=[long_name]))
    # Null (or empty) says nothing: the plain local boot goes ahead.
    create(cloud, image, "2.67", 202, block_device_mapping_v2=[{**local, "volume_type": None}])


# -- 2.71: server_groups in the answers about one server ----------------------------------

def test_2_71_server_groups_in_show_update_and_rebuild(cloud: InProcessCloud,
                                                      image: str) -> None:
    group = call(cloud, "2.64", "POST", "/os-server-groups", {"server_group": {
        "name": "mv271", "policy": "soft-affinity"}}).get_json()["server_group"]["id"]
    member = call(cloud, "2.71", "POST", "/servers", {
        "server": {"name": "grouped", "flavorRef": "1", "imageRef": image, "networks": "none"},
        "os:scheduler_hints": {"group": group}}, status=202).get_json()["server"]["id"]
    loner = boot(cloud, image, "loner")["id"]
    cloud.wait_for(member, "ACTIVE")
    path = f"/servers/{member}"
    assert "server_groups" not in call(cloud, "2.70", "GET", path).get_json()["server"]
    assert call(cloud, "2.71", "GET", path).get_json()["server"]["server_groups"] == [group]
    assert call(cloud, "2.71", "GET", f"/servers/{loner}").get_json()["server"][
        "server_groups"] == []
    updated = call(cloud, "2.71", "PUT", path, {"server": {"name": "grouped2"}})
    assert updated.get_json()["server"]["server_groups"] == [group]
    rebuilt = action(cloud, "2.71", member, {"rebuild": {"imageRef": image}}).get_json()
    assert rebuilt["server"]["server_groups"] == [group]
    # Not in the lists (Nova adds it to show, PUT and rebuild only).
    listed = call(cloud, "2.71", "GET", "/servers/detail").get_json()["servers"]
    assert all("server_groups" not in s for s in listed)
    cloud.wait_for(member, "ACTIVE")
    for sid in (member, loner):
        cloud.compute("DELETE", f"/servers/{sid}")
