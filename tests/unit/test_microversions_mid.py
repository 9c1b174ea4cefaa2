"""Microversions 2.20-2.40 (except 2.23): each change checked at the version
before it and at the version itself, on the in-process cloud. Every request
names its version explicitly."""
from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest

from stratus.db import instances as db_instances
from stratus.db import tags as db_tags
from tests import compute_schemas as S
from tests.cloud import InProcessCloud
from tests.versioned import call, fault_message, module_cloud, module_image, role_token

UUID = "6b0a3b3c-8d55-4f0c-9d3e-5a4b9b7f1e01"


cloud = module_cloud("mvmid", ("host1", "host2"))
image = module_image("mvmid")


def boot(cloud: InProcessCloud, image: str, name: str, **extra: Any) -> dict[str, Any]:
    return cloud.boot(name, image=image, **extra)


# -- 2.21: instance actions of deleted servers ------------------------------------------

def test_2_21_instance_actions_of_a_deleted_server(cloud: InProcessCloud, image: str) -> None:
    server = boot(cloud, image, "gone")
    assert cloud.compute("DELETE", f"/servers/{server['id']}").status_code == 204
    cloud.wait_for(server["id"], "DELETED")
    path = f"/servers/{server['id']}/os-instance-actions"
    assert "could not be found" in fault_message(call(cloud, "2.20", "GET", path, status=404))
    actions = call(cloud, "2.21", "GET", path).get_json()["instanceActions"]
    S.validate(S.LIST_INSTANCE_ACTIONS, {"instanceActions": actions})
    assert {a["action"] for a in actions} == {"create", "delete"}
    request_id = actions[0]["request_id"]
    call(cloud, "2.20", "GET", f"{path}/{request_id}", status=404)
    action = call(cloud, "2.21", "GET", f"{path}/{request_id}").get_json()["instanceAction"]
    assert action["instance_uuid"] == server["id"]
    # Still a 404 for a server that never existed.
    call(cloud, "2.21", "GET", f"/servers/{UUID}/os-instance-actions", status=404)


# -- 2.26: server tags ----------------------------------------------------------------

TAG_ITEMS = {"type": "array", "maxItems": 50,
             "items": {"type": "string", "pattern": "^[^,/]*$", "maxLength": 60}}
GET_SERVER_226 = copy.deepcopy(S.GET_SERVER_V219)
GET_SERVER_226["properties"]["server"]["properties"]["tags"] = TAG_ITEMS
GET_SERVER_226["properties"]["server"]["required"].append("tags")
LIST_TAGS = S.obj({"tags": TAG_ITEMS}, ["tags"])


def test_2_26_tag_routes_are_404_before(cloud: InProcessCloud, image: str) -> None:
    server = boot(cloud, image, "untagged")
    base = f"/servers/{server['id']}/tags"
    for method, path in (("GET", base), ("PUT", base), ("DELETE", base),
                         ("GET", base + "/a"), ("PUT", base + "/a"),
                         ("DELETE", base + "/a")):
        resp = call(cloud, "2.25", method, path, {"tags": []} if method == "PUT" else None,
                    status=404)
        assert fault_message(resp) == "The resource could not be found."
    shown = call(cloud, "2.25", "GET", f"/servers/{server['id']}").get_json()["server"]
    assert "tags" not in shown
    S.validate(S.GET_SERVER_V219, {"server": shown})


def test_2_26_tag_crud(cloud: InProcessCloud, image: str) -> None:
    server = boot(cloud, image, "tagged")
    sid = server["id"]
    base = f"/servers/{sid}/tags"
    assert call(cloud, "2.26", "GET", base).get_json() == {"tags": []}
    resp = call(cloud, "2.26", "PUT", base + "/web", status=201)
    assert resp.headers["Location"].endswith(f"/compute/v2.1/servers/{sid}/tags/web")
    assert resp.get_data() == b""
    call(cloud, "2.26", "PUT", base + "/web", status=204)  # already there
    call(cloud, "2.26", "GET", base + "/web", status=204)
    missing = call(cloud, "2.26", "GET", base + "/db", status=404)
    assert fault_message(missing) == f"Server {sid} has no tag 'db'"
    body = call(cloud, "2.26", "PUT", base, {"tags": ["b", "a", "b"]}).get_json()
    S.validate(LIST_TAGS, body)
    assert body == {"tags": ["a", "b"]}
    assert call(cloud, "2.26", "GET", base).get_json() == {"tags": ["a", "b"]}
    shown = call(cloud, "2.26", "GET", f"/servers/{sid}").get_json()
    S.validate(GET_SERVER_226, shown)
    assert shown["server"]["tags"] == ["a", "b"]
    # The PUT /servers/{id} answer lists them too (tempest's update_server at 2.26).
    updated = call(cloud, "2.26", "PUT", f"/servers/{sid}",
                   {"server": {"name": "tagged2"}}).get_json()["server"]
    assert updated["tags"] == ["a", "b"]
    assert "tags" not in call(cloud, "2.25", "PUT", f"/servers/{sid}",
                              {"server": {"name": "tagged"}}).get_json()["server"]
    call(cloud, "2.26", "DELETE", base + "/a", status=204)
    gone = call(cloud, "2.26", "DELETE", base + "/a", status=404)
    assert fault_message(gone) == f"Instance {sid} has no tag 'a'"
    call(cloud, "2.26", "DELETE", base, status=204)
    assert call(cloud, "2.26", "GET", base).get_json() == {"tags": []}


@pytest.mark.parametrize("tag,expected", [
    ("a,b", "Tag 'a,b' is invalid. It must be a non empty string without characters '/' "
            "and ','."),
    ("x" * 61, "is invalid"),
])
def test_2_26_invalid_tags(cloud: InProcessCloud, image: str, tag: str,
                           expected: str) -> None:
    server = boot(cloud, image, "badtags")
    resp = call(cloud, "2.26", "PUT", f"/servers/{server['id']}/tags/{tag}", status=400)
    assert expected in fault_message(resp)
    resp = call(cloud, "2.26", "PUT", f"/servers/{server['id']}/tags", {"tags": [tag]},
                status=400)
    assert "Invalid input for field/attribute" in fault_message(resp)


def test_2_26_tag_limits_and_bodies(cloud: InProcessCloud, image: str) -> None:
    server = boot(cloud, image, "many")
    base = f"/servers/{server['id']}/tags"
    fifty = [f"t{i}" for i in range(50)]
    call(cloud, "2.26", "PUT", base, {"tags": fifty})
    resp = call(cloud, "2.26", "PUT", base + "/one-more", status=400)
    assert fault_message(resp) == "The number of tags exceeded the per-server limit 50"
    call(cloud, "2.26", "PUT", base, {"tags": fifty + ["x"]}, status=400)
    call(cloud, "2.26", "PUT", base, {"tag": []}, status=400)
    call(cloud, "2.26", "PUT", base, None, status=400)
    call(cloud, "2.26", "PUT", base + "/x", {"tag": "x"}, status=400)  # takes no body
    call(cloud, "2.26", "PUT", base, {"tags": []})
    # Another project's server is a 404; a reader may list but not change.
    call(cloud, "2.26", "GET", f"/servers/{UUID}/tags", status=404)


def test_2_26_tags_need_a_settled_server(cloud: InProcessCloud, image: str) -> None:
    sid = boot(cloud, image, "broken")["id"]
    db_instances.instance_update(cloud.db, sid, {"vm_state": "error"})
    resp = call(cloud, "2.26", "PUT", f"/servers/{sid}/tags/x", status=409)
    assert fault_message(resp) == (f"Cannot 'update tag' instance {sid} while it is in "
                                   f"vm_state error")
    call(cloud, "2.26", "PUT", f"/servers/{sid}/tags", {"tags": ["x"]}, status=409)
    call(cloud, "2.26", "DELETE", f"/servers/{sid}/tags", status=409)
    call(cloud, "2.26", "DELETE", f"/servers/{sid}/tags/x", status=409)
    call(cloud, "2.26", "GET", f"/servers/{sid}/tags")  # reading is fine


def test_2_26_tag_filters_and_detail(cloud: InProcessCloud, image: str) -> None:
    servers = {}
    for name, tags in (("f-red", ["red"]), ("f-red-blue", ["red", "blue"]),
                       ("f-green", ["green"]), ("f-none", [])):
        sid = boot(cloud, image, name)["id"]
        servers[name] = sid
        call(cloud, "2.26", "PUT", f"/servers/{sid}/tags", {"tags": tags})

    def names(version: str, query: str) -> set[str]:
        listed = call(cloud, version, "GET", f"/servers?name=^f-&{query}").get_json()
        return {s["name"] for s in listed["servers"]}

    everything = set(servers)
    assert names("2.25", "tags=red") == everything  # ignored before 2.26
    assert names("2.26", "tags=red") == {"f-red", "f-red-blue"}
    assert names("2.26", "tags=red,blue") == {"f-red-blue"}
    assert names("2.26", "tags-any=blue,green") == {"f-red-blue", "f-green"}
    assert names("2.26", "not-tags=red,blue") == everything - {"f-red-blue"}
    assert names("2.26", "not-tags-any=red,green") == {"f-none"}
    assert names("2.26", "tags=red&not-tags=blue") == {"f-red"}
    detail = call(cloud, "2.26", "GET", "/servers/detail?name=^f-").get_json()
    S.validate(S.body("servers", S.array(GET_SERVER_226["properties"]["server"]),
                      "servers_links"), detail)
    assert {s["name"]: s["tags"] for s in detail["servers"]} == {
        "f-red": ["red"], "f-red-blue": ["blue", "red"], "f-green": ["green"], "f-none": []}
    old = call(cloud, "2.25", "GET", "/servers/detail?name=^f-").get_json()
    assert all("tags" not in s for s in old["servers"])


def test_2_26_members_tag_and_filter_readers_only_read(cloud: InProcessCloud,
                                                        image: str) -> None:
    member = role_token(cloud, "mv-member", "member")
    reader = role_token(cloud, "mv-reader", "reader")
    sid = boot(cloud, image, "m-tagged")["id"]
    boot(cloud, image, "m-plain")
    call(cloud, "2.26", "PUT", f"/servers/{sid}/tags/mine", status=201, token=member)
    listed = call(cloud, "2.26", "GET", "/servers?name=^m-&tags=mine",
                  token=member).get_json()["servers"]
    assert [s["id"] for s in listed] == [sid]
    # Before 2.26 a non-admin's tag filter is dropped, as any unknown filter.
    listed = call(cloud, "2.25", "GET", "/servers?name=^m-&tags=mine",
                  token=member).get_json()["servers"]
    assert len(listed) == 2
    assert call(cloud, "2.26", "GET", f"/servers/{sid}/tags",
                token=reader).get_json() == {"tags": ["mine"]}
    call(cloud, "2.26", "GET", f"/servers/{sid}/tags/mine", status=204, token=reader)
    for method, path in (("PUT", "/tags/other"), ("DELETE", "/tags/mine"),
                         ("DELETE", "/tags")):
        call(cloud, "2.26", method, f"/servers/{sid}{path}", status=403, token=reader)
    call(cloud, "2.26", "PUT", f"/servers/{sid}/tags", {"tags": []}, status=403, token=reader)


def test_2_26_deleting_a_server_drops_its_tags(cloud: InProcessCloud, image: str) -> None:
    sid = boot(cloud, image, "doomed")["id"]
    call(cloud, "2.26", "PUT", f"/servers/{sid}/tags", {"tags": ["x", "y"]})
    assert cloud.compute("DELETE", f"/servers/{sid}").status_code == 204
    cloud.wait_for(sid, "DELETED")
    assert db_tags.tags_get(cloud.db, sid) == []


def test_2_26_rebuild_answer_lists_tags(cloud: InProcessCloud, image: str) -> None:
    sid = boot(cloud, image, "rebuilt")["id"]
    call(cloud, "2.26", "PUT", f"/servers/{sid}/tags/keep", status=201)
    resp = call(cloud, "2.26", "POST", f"/servers/{sid}/action",
                {"rebuild": {"imageRef": image}}, status=202)
    assert resp.get_json()["server"]["tags"] == ["keep"]
    resp = call(cloud, "2.25", "POST", f"/servers/{sid}/action",
                {"rebuild": {"imageRef": image}}, status=None)
    assert resp.status_code in (202, 409)  # 409 if the first rebuild still runs
    if resp.status_code == 202:
        assert "tags" not in resp.get_json()["server"]


# -- 2.27: the standard version header -------------------------------------------------

def test_2_27_both_header_forms(cloud: InProcessCloud) -> None:
    resp = cloud.compute("GET", "/flavors", headers={"OpenStack-API-Version": "compute 2.27"})
    assert resp.headers["OpenStack-API-Version"] == "compute 2.27"
    assert resp.headers["X-OpenStack-Nova-API-Version"] == "2.27"
    resp = cloud.compute("GET", "/flavors", headers={"X-OpenStack-Nova-API-Version": "2.27"})
    assert resp.headers["OpenStack-API-Version"] == "compute 2.27"


# -- 2.28: cpu_info as an object ---------------------------------------------------------

def test_2_28_cpu_info_is_an_object(cloud: InProcessCloud) -> None:
    old = call(cloud, "2.27", "GET", "/os-hypervisors/detail").get_json()["hypervisors"]
    assert old and all(isinstance(h["cpu_info"], str) for h in old)
    new = call(cloud, "2.28", "GET", "/os-hypervisors/detail").get_json()["hypervisors"]
    assert all(isinstance(h["cpu_info"], dict) for h in new)
    schema_228 = copy.deepcopy(S.LIST_HYPERVISORS_DETAIL)
    schema_228["properties"]["hypervisors"]["items"]["properties"]["cpu_info"] = {
        "type": "object"}
    S.validate(schema_228, {"hypervisors": new})
    one = call(cloud, "2.28", "GET", f"/os-hypervisors/{new[0]['id']}").get_json()
    assert one["hypervisor"]["cpu_info"] == new[0]["cpu_info"]


# -- 2.32, 2.33, 2.37: networks and device tags in server create --------------------------

def _create(cloud: InProcessCloud, image: str, version: str, status: int,
            **server: Any) -> Any:
    body = {"server": {"name": "nets", "flavorRef": "1", "imageRef": image, **server}}
    resp = call(cloud, version, "POST", "/servers", body, status=status)
    if status == 202:
        cloud.compute("DELETE", f"/servers/{resp.get_json()['server']['id']}")
    return resp


BOOT_BDM = {"source_type": "image", "destination_type": "local", "boot_index": 0,
            "uuid": None}


def test_2_32_device_tags_on_networks_and_mappings(cloud: InProcessCloud, image: str) -> None:
    tagged_net = [{"uuid": UUID, "tag": "nic1"}]
    bdm = [dict(BOOT_BDM, uuid=image, tag="disk1")]
    assert "'tag' was unexpected" in fault_message(
        _create(cloud, image, "2.31", 400, networks=tagged_net))
    _create(cloud, image, "2.31", 400, block_device_mapping_v2=bdm)
    _create(cloud, image, "2.32", 202, networks=tagged_net)
    _create(cloud, image, "2.32", 202, block_device_mapping_v2=bdm)
    _create(cloud, image, "2.32", 400, networks=[{"uuid": UUID, "tag": "a/b"}])
    # 2.33 drops the mapping's tag (Nova's bug, until 2.42); networks keep theirs.
    _create(cloud, image, "2.33", 400, block_device_mapping_v2=bdm)
    _create(cloud, image, "2.36", 202, networks=tagged_net)
    assert "'tag' was unexpected" in fault_message(
        _create(cloud, image, "2.37", 400, networks=tagged_net))


def test_2_37_networks_required(cloud: InProcessCloud, image: str) -> None:
    _create(cloud, image, "2.36", 202)
    resp = _create(cloud, image, "2.37", 400)
    assert "'networks' is a required property" in fault_message(resp)
    _create(cloud, image, "2.37", 202, networks="auto")
    _create(cloud, image, "2.37", 202, networks="none")
    _create(cloud, image, "2.37", 202, networks=[])
    _create(cloud, image, "2.37", 202, networks=[{"uuid": UUID}])
    _create(cloud, image, "2.37", 400, networks="all")
    # The uuid is strictly a UUID from 2.37.
    assert "is not a 'uuid'" in fault_message(
        _create(cloud, image, "2.37", 400, networks=[{"uuid": "br-" + UUID}]))
    _create(cloud, image, "2.36", 202, networks=[{"uuid": "br-" + UUID}])


def test_2_37_openstacksdk_cloud_layer_sends_auto() -> None:
    """What the clients send without a network at >= 2.37: openstacksdk's
    cloud layer (and OSC 10.5 through it) sends networks "auto"."""
    import inspect

    from openstack.cloud import _compute
    source = inspect.getsource(_compute.ComputeCloudMixin.create_server)
    assert "'2.37'" in source and "kwargs['networks'] = 'auto'" in source


# -- 2.33: hypervisor paging ---------------------------------------------------------------

def test_2_33_hypervisor_paging(cloud: InProcessCloud) -> None:
    everything = call(cloud, "2.33", "GET", "/os-hypervisors").get_json()
    assert len(everything["hypervisors"]) == 2 and "hypervisors_links" not in everything
    ids = [h["id"] for h in everything["hypervisors"]]
    assert ids == sorted(ids)
    old = call(cloud, "2.32", "GET", "/os-hypervisors?limit=1").get_json()
    assert len(old["hypervisors"]) == 2 and "hypervisors_links" not in old
    page = call(cloud, "2.33", "GET", "/os-hypervisors?limit=1").get_json()
    assert [h["id"] for h in page["hypervisors"]] == ids[:1]
    link = page["hypervisors_links"][0]
    assert link["rel"] == "next"
    assert link["href"].endswith(f"/compute/v2.1/os-hypervisors?limit=1&marker={ids[0]}")
    schema_233 = copy.deepcopy(S.LIST_HYPERVISORS)
    schema_233["properties"]["hypervisors_links"] = S.LINKS
    S.validate(schema_233, page)
    second = call(cloud, "2.33", "GET", f"/os-hypervisors?limit=1&marker={ids[0]}").get_json()
    assert [h["id"] for h in second["hypervisors"]] == ids[1:]
    last = call(cloud, "2.33", "GET", f"/os-hypervisors?marker={ids[1]}").get_json()
    assert last == {"hypervisors": []}
    detail = call(cloud, "2.33", "GET", "/os-hypervisors/detail?limit=1").get_json()
    assert detail["hypervisors_links"][0]["href"].endswith(
        f"/os-hypervisors/detail?limit=1&marker={ids[0]}")
    bad = call(cloud, "2.33", "GET", "/os-hypervisors?marker=999999", status=400)
    assert fault_message(bad) == "marker [999999] not found"
    call(cloud, "2.32", "GET", "/os-hypervisors?marker=999999")  # ignored before
    call(cloud, "2.33", "GET", "/os-hypervisors?limit=-1", status=400)


# -- 2.35: keypair paging ----------------------------------------------------------------------

def test_2_35_keypair_paging(cloud: InProcessCloud) -> None:
    for name in ("kp-c", "kp-a", "kp-b"):
        call(cloud, "2.1", "POST", "/os-keypairs", {"keypair": {"name": name}})
    names = [k["keypair"]["name"] for k in
             call(cloud, "2.35", "GET", "/os-keypairs").get_json()["keypairs"]]
    assert names == sorted(names) and {"kp-a", "kp-b", "kp-c"} <= set(names)
    old = call(cloud, "2.34", "GET", "/os-keypairs?limit=1").get_json()
    assert len(old["keypairs"]) == len(names) and "keypairs_links" not in old
    page = call(cloud, "2.35", "GET", "/os-keypairs?limit=2").get_json()
    assert [k["keypair"]["name"] for k in page["keypairs"]] == names[:2]
    assert page["keypairs_links"][0]["href"].endswith(
        f"/compute/v2.1/os-keypairs?limit=2&marker={names[1]}")
    schema_235 = copy.deepcopy(S.LIST_KEYPAIRS_V22)
    schema_235["properties"]["keypairs_links"] = S.LINKS
    S.validate(schema_235, page)
    rest = call(cloud, "2.35", "GET", f"/os-keypairs?marker={names[1]}").get_json()
    assert [k["keypair"]["name"] for k in rest["keypairs"]] == names[2:]
    assert "keypairs_links" not in rest
    bad = call(cloud, "2.35", "GET", "/os-keypairs?marker=nope", status=400)
    assert fault_message(bad) == "Marker nope could not be found."
    call(cloud, "2.34", "GET", "/os-keypairs?marker=nope")


# -- 2.36 and 2.39: the proxies, network quotas and limits ----------------------------------

def test_2_36_image_proxy_is_gone(cloud: InProcessCloud, image: str) -> None:
    call(cloud, "2.35", "GET", "/images")
    call(cloud, "2.35", "GET", f"/images/{image}")
    for path in ("/images", "/images/detail", f"/images/{image}"):
        resp = call(cloud, "2.36", "GET", path, status=404)
        assert fault_message(resp) == "The resource could not be found."
    call(cloud, "2.36", "DELETE", f"/images/{image}", status=404)
    # Image metadata lasts until 2.38.
    call(cloud, "2.38", "GET", f"/images/{image}/metadata")
    call(cloud, "2.38", "POST", f"/images/{image}/metadata", {"metadata": {"k": "v"}})
    call(cloud, "2.38", "GET", f"/images/{image}/metadata/k")
    meta = f"/images/{image}/metadata"
    for method, path, body in (("GET", meta, None), ("POST", meta, {"metadata": {}}),
                               ("PUT", meta, {"metadata": {}}), ("GET", meta + "/k", None),
                               ("PUT", meta + "/k", {"meta": {"k": "w"}}),
                               ("DELETE", meta + "/k", None)):
        call(cloud, "2.39", method, path, body, status=404)
    assert call(cloud, "2.38", "GET", f"{meta}/k").get_json() == {"meta": {"k": "v"}}


NETWORK_LIMITS = {"maxSecurityGroupRules", "maxSecurityGroups", "maxTotalFloatingIps",
                  "totalFloatingIpsUsed", "totalSecurityGroupsUsed"}


def _schema_without(schema: dict[str, Any], path: list[str], names: set[str]
                    ) -> dict[str, Any]:
    schema = copy.deepcopy(schema)
    inner = schema
    for key in path:
        inner = inner["properties"][key]
    for name in names:
        inner["properties"].pop(name)
        if name in inner.get("required", []):
            inner["required"].remove(name)
    return schema


def test_2_36_and_2_39_limits(cloud: InProcessCloud) -> None:
    old = call(cloud, "2.35", "GET", "/limits").get_json()
    S.validate(S.GET_LIMITS, old)
    assert NETWORK_LIMITS <= set(old["limits"]["absolute"])
    new = call(cloud, "2.36", "GET", "/limits").get_json()
    schema_236 = _schema_without(S.GET_LIMITS, ["limits", "absolute"], NETWORK_LIMITS)
    S.validate(schema_236, new)
    absolute = new["limits"]["absolute"]
    assert not NETWORK_LIMITS & set(absolute) and "maxImageMeta" in absolute
    assert set(absolute) == set(old["limits"]["absolute"]) - NETWORK_LIMITS
    latest = call(cloud, "2.39", "GET", "/limits").get_json()
    S.validate(_schema_without(schema_236, ["limits", "absolute"], {"maxImageMeta"}), latest)
    assert set(latest["limits"]["absolute"]) == set(absolute) - {"maxImageMeta"}
    assert call(cloud, "2.38", "GET", "/limits").get_json() == new


NETWORK_QUOTAS = {"fixed_ips", "floating_ips", "security_group_rules", "security_groups"}


def test_2_36_quota_sets(cloud: InProcessCloud) -> None:
    project = cloud.project_id()
    base = f"/os-quota-sets/{project}"
    assert NETWORK_QUOTAS <= set(call(cloud, "2.35", "GET", base).get_json()["quota_set"])
    for path, schema in ((base, S.GET_QUOTA_SET), (base + "/defaults", S.GET_QUOTA_SET),
                         (base + "/detail", S.GET_QUOTA_SET_DETAILS)):
        body = call(cloud, "2.36", "GET", path).get_json()
        S.validate(_schema_without(schema, ["quota_set"], NETWORK_QUOTAS), body)
        assert not NETWORK_QUOTAS & set(body["quota_set"])
    call(cloud, "2.35", "PUT", base, {"quota_set": {"floating_ips": 5}})
    resp = call(cloud, "2.36", "PUT", base, {"quota_set": {"floating_ips": 5}}, status=400)
    assert "'floating_ips' was unexpected" in fault_message(resp)
    call(cloud, "2.36", "PUT", base, {"quota_set": {"networks": 5}}, status=400)
    body = call(cloud, "2.36", "PUT", base, {"quota_set": {"cores": 30}}).get_json()
    S.validate(_schema_without(S.UPDATE_QUOTA_SET, ["quota_set"], NETWORK_QUOTAS), body)
    assert body["quota_set"]["cores"] == 30
    call(cloud, "2.36", "DELETE", base, status=202)


# -- 2.38: an invalid status filter ---------------------------------------------------------

def test_2_38_invalid_status_is_400(cloud: InProcessCloud) -> None:
    assert call(cloud, "2.37", "GET", "/servers?status=bogus").get_json() == {"servers": []}
    resp = call(cloud, "2.38", "GET", "/servers?status=bogus", status=400)
    assert fault_message(resp) == "Invalid status value"
    call(cloud, "2.38", "GET", "/servers/detail?status=bogus", status=400)
    call(cloud, "2.38", "GET", "/servers?status=active")
    # One known status among unknown ones still lists.
    call(cloud, "2.38", "GET", "/servers?status=bogus&status=ACTIVE")


# -- 2.40: usage paging ---------------------------------------------------------------------

def test_2_40_usage_paging(cloud: InProcessCloud, image: str) -> None:
    for name in ("u1", "u2", "u3"):
        boot(cloud, image, name)
    start = (datetime.datetime.utcnow() - datetime.timedelta(days=1)).strftime(
        "%Y-%m-%dT%H:%M:%S")
    project = cloud.project_id()
    query = f"start={start}&detailed=1"
    full = call(cloud, "2.40", "GET", f"/os-simple-tenant-usage?{query}").get_json()
    assert "tenant_usages_links" not in full
    uuids = [u["instance_id"] for t in full["tenant_usages"] for u in t["server_usages"]]
    assert len(uuids) >= 3
    old = call(cloud, "2.39", "GET", f"/os-simple-tenant-usage?{query}&limit=1").get_json()
    assert old == full or len(old["tenant_usages"][0]["server_usages"]) == len(uuids)
    assert "tenant_usages_links" not in old
    page = call(cloud, "2.40", "GET", f"/os-simple-tenant-usage?{query}&limit=2").get_json()
    assert [u["instance_id"] for u in page["tenant_usages"][0]["server_usages"]] == uuids[:2]
    href = page["tenant_usages_links"][0]["href"]
    assert f"marker={uuids[1]}" in href and "/compute/v2.1/os-simple-tenant-usage?" in href
    schema_240 = copy.deepcopy(S.LIST_TENANT_USAGE)
    schema_240["properties"]["tenant_usages_links"] = S.LINKS
    S.validate(schema_240, page)
    rest = call(cloud, "2.40", "GET",
                f"/os-simple-tenant-usage?{query}&marker={uuids[1]}").get_json()
    assert [u["instance_id"] for u in rest["tenant_usages"][0]["server_usages"]] == uuids[2:]
    # Without detailed=1 the links still come (Nova pages over the servers).
    brief = call(cloud, "2.40", "GET",
                 f"/os-simple-tenant-usage?start={start}&limit=1").get_json()
    assert "server_usages" not in brief["tenant_usages"][0]
    assert f"marker={uuids[0]}" in brief["tenant_usages_links"][0]["href"]
    one = call(cloud, "2.40", "GET",
               f"/os-simple-tenant-usage/{project}?start={start}&limit=1").get_json()
    assert len(one["tenant_usage"]["server_usages"]) == 1
    assert one["tenant_usage_links"][0]["href"].split("?")[0].endswith(
        f"/os-simple-tenant-usage/{project}")
    S.validate({**S.GET_TENANT_USAGE, "properties": {
        **S.GET_TENANT_USAGE["properties"], "tenant_usage_links": S.LINKS}}, one)
    old_one = call(cloud, "2.39", "GET",
                   f"/os-simple-tenant-usage/{project}?start={start}&limit=1").get_json()
    assert "tenant_usage_links" not in old_one
    assert len(old_one["tenant_usage"]["server_usages"]) == len(uuids)
    bad = call(cloud, "2.40", "GET", f"/os-simple-tenant-usage?marker={UUID}", status=400)
    assert fault_message(bad) == f"Marker {UUID} could not be found."


def test_2_39_create_image_drops_the_metadata_quota(cloud: InProcessCloud, image: str) -> None:
    sid = boot(cloud, image, "snapper")["id"]
    base = f"/os-quota-sets/{cloud.project_id()}"
    call(cloud, "2.1", "PUT", base, {"quota_set": {"metadata_items": 2}})
    try:
        body = {"createImage": {"name": "snap", "metadata": {"a": "1", "b": "2", "c": "3"}}}
        resp = call(cloud, "2.38", "POST", f"/servers/{sid}/action", body, status=403)
        assert fault_message(resp) == "Image metadata limit exceeded"
        call(cloud, "2.39", "POST", f"/servers/{sid}/action", body, status=202)
    finally:
        call(cloud, "2.1", "DELETE", base, status=202)
