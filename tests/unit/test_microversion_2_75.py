"""Microversion 2.75: a strict ``GET /servers`` query (unknown parameters and
the sort keys Nova only dropped are 400s), the whole server body in the
``PUT /servers/{id}`` and rebuild answers, ``"swap": 0`` for flavors without
swap, and ``servers`` always present (maybe empty) in the os-hypervisors
answers asked ``with_servers``. Each checked at 2.74 and at 2.75 on the
in-process cloud; every request names its version explicitly.

The advertised maximum is still 2.74: this module raises it to 2.75."""
from __future__ import annotations

from typing import Any

import pytest

from stratus.api.compute.schemas import servers as server_schema
from tests import compute_schemas as S
from tests.cloud import InProcessCloud
from tests.versioned import call, fault_message, module_cloud, module_image, role_token

HOSTS = ("host1", "host2", "host3")


cloud = module_cloud("mv275", HOSTS)
image = module_image("mv275")


@pytest.fixture(scope="module")
def member(cloud: InProcessCloud) -> str:
    """A token of a non-admin user of the admin project (the servers' project)."""
    return role_token(cloud, "mv275-member", "member")


def boot(cloud: InProcessCloud, image: str, name: str) -> str:
    sid = cloud.boot(name, image=image)["id"]
    cloud.wait_for(sid, "ACTIVE")
    return sid


def delete(cloud: InProcessCloud, *server_ids: str) -> None:
    for sid in server_ids:
        cloud.compute("DELETE", f"/servers/{sid}")
    for sid in server_ids:
        cloud.wait_for(sid, "DELETED")


def action(cloud: InProcessCloud, version: str, server_id: str, body: Any,
           status: int | None = 202, **kw: Any) -> Any:
    return call(cloud, version, "POST", f"/servers/{server_id}/action", body,
                status=status, **kw)


def shown(cloud: InProcessCloud, version: str, server_id: str, **kw: Any) -> dict[str, Any]:
    return call(cloud, version, "GET", f"/servers/{server_id}", **kw).get_json()["server"]


# -- 1. the strict list query -------------------------------------------------------

LIST_PATHS = ("/servers", "/servers/detail")


@pytest.mark.parametrize("path", LIST_PATHS)
def test_2_74_drops_unknown_list_parameters(cloud: InProcessCloud, member: str,
                                            path: str) -> None:
    for kw in ({}, {"token": member}):
        call(cloud, "2.74", "GET", f"{path}?foo=bar", **kw)
        call(cloud, "2.74", "GET", f"{path}?name=x&unknown=1&other=2", **kw)


@pytest.mark.parametrize("path", LIST_PATHS)
def test_2_75_refuses_unknown_list_parameters(cloud: InProcessCloud, member: str,
                                              path: str) -> None:
    for kw in ({}, {"token": member}):
        # jsonschema's additionalProperties message when the schema has
        # patternProperties (Nova's "^_"), as Nova answers it.
        resp = call(cloud, "2.75", "GET", f"{path}?foo=bar", status=400, **kw)
        assert fault_message(resp) == "'foo' does not match any of the regexes: '^_'"
        resp = call(cloud, "2.75", "GET", f"{path}?name=x&zzz=1&yyy=2", status=400, **kw)
        assert fault_message(resp) == ("'yyy', 'zzz' do not match any of the regexes: "
                                       "'^_'")


@pytest.mark.parametrize("path", LIST_PATHS)
def test_2_75_known_list_parameters_still_pass(cloud: InProcessCloud, image: str,
                                               member: str, path: str) -> None:
    sid = boot(cloud, image, "strict-known")
    query = ("name=strict-known&status=ACTIVE&limit=5&sort_key=display_name&sort_dir=asc"
             "&not-tags=c&not-tags-any=d,e&locked=false&changes-since=2000-01-01T00:00:00Z"
             "&changes-before=2100-01-01T00:00:00Z&flavor=1&image=" + image)
    for kw in ({}, {"token": member}):
        servers = call(cloud, "2.75", "GET", f"{path}?{query}", **kw).get_json()["servers"]
        assert [s["id"] for s in servers] == [sid]
        call(cloud, "2.75", "GET", f"{path}?tags=a&tags-any=a,b&ip=10&ip6=fe80&marker={sid}",
             **kw)
    # Filters only admins may use pass the schema, and are still dropped for others.
    admin_only = "host=host1&node=host1&vm_state=active&key_name=x&all_tenants=1"
    call(cloud, "2.75", "GET", f"{path}?{admin_only}")
    call(cloud, "2.75", "GET", f"{path}?{admin_only.replace('&all_tenants=1', '')}",
         token=member)
    delete(cloud, sid)


@pytest.mark.parametrize("path", LIST_PATHS)
def test_2_75_joined_table_and_underscore_filters(cloud: InProcessCloud, member: str,
                                                  path: str) -> None:
    """They pass the schema (Nova lists them and ``^_``), then are Nova's
    "Invalid filter field" 400 for an admin and dropped for a member."""
    for name in ("metadata", "security_groups", "_secret"):
        for version in ("2.74", "2.75"):
            resp = call(cloud, version, "GET", f"{path}?{name}=x", status=400)
            assert fault_message(resp) == f"Invalid filter field: {name}."
            call(cloud, version, "GET", f"{path}?{name}=x", token=member)


@pytest.mark.parametrize("key", sorted(server_schema.SORT_KEYS_IGNORED_V273))
def test_ignored_sort_keys_2_74_dropped_2_75_refused(cloud: InProcessCloud,
                                                     key: str) -> None:
    call(cloud, "2.74", "GET", f"/servers?sort_key={key}")
    for path in LIST_PATHS:
        resp = call(cloud, "2.75", "GET", f"{path}?sort_key={key}&sort_dir=asc", status=400)
        assert fault_message(resp).startswith(
            f"Invalid input for query parameters sort_key. Value: {key}. "
            f"'{key}' is not one of [")


def test_2_75_valid_sort_keys(cloud: InProcessCloud, image: str, member: str) -> None:
    assert "locked" in server_schema.SORT_KEYS_V275
    assert not set(server_schema.SORT_KEYS_V275) & server_schema.SORT_KEYS_IGNORED_V273
    first = boot(cloud, image, "sort-a")
    second = boot(cloud, image, "sort-b")

    def order(query: str, **kw: Any) -> list[str]:
        servers = call(cloud, "2.75", "GET", f"/servers?{query}", **kw).get_json()["servers"]
        return [s["id"] for s in servers if s["id"] in (first, second)]

    assert order("sort_key=display_name&sort_dir=asc") == [first, second]
    assert order("sort_key=display_name&sort_dir=desc", token=member) == [second, first]
    assert order("sort_key=locked&sort_key=display_name&sort_dir=asc&sort_dir=asc") == [
        first, second]
    # instance_type_id is a valid key in Nova (Stratus has no such column: dropped).
    call(cloud, "2.75", "GET", "/servers?sort_key=instance_type_id")
    # Unknown keys were always a 400; host and node stay admin-only.
    for version in ("2.74", "2.75"):
        resp = call(cloud, version, "GET", "/servers?sort_key=foo", status=400)
        assert "'foo' is not one of" in fault_message(resp)
        resp = call(cloud, version, "GET", "/servers?sort_key=host", status=403, token=member)
        assert fault_message(resp) == "Only administrators can sort servers by host"
    delete(cloud, first, second)


# -- 2. the PUT and rebuild answers ---------------------------------------------------

CORE_ONLY_MISSING = ("key_name", "config_drive", "OS-EXT-AZ:availability_zone",
                     "OS-EXT-STS:vm_state", "OS-EXT-STS:task_state", "OS-EXT-STS:power_state",
                     "OS-SRV-USG:launched_at", "OS-SRV-USG:terminated_at",
                     "os-extended-volumes:volumes_attached", "OS-EXT-SRV-ATTR:host",
                     "OS-EXT-SRV-ATTR:hypervisor_hostname", "host_status")


def test_2_75_update_answers_the_show_body(cloud: InProcessCloud, image: str,
                                           member: str) -> None:
    sid = boot(cloud, image, "put-full")
    for kw in ({}, {"token": member}):
        updated = call(cloud, "2.75", "PUT", f"/servers/{sid}",
                       {"server": {"name": "put-full2"}}, **kw).get_json()
        S.validate(S.UPDATE_SERVER_V275, updated)
        get = shown(cloud, "2.75", sid, **kw)
        assert set(updated["server"]) == set(get)
        assert updated["server"]["name"] == "put-full2"
        for key in ("key_name", "config_drive", "OS-EXT-STS:vm_state",
                    "OS-EXT-AZ:availability_zone", "server_groups", "locked_reason"):
            assert updated["server"][key] == get[key], key
    # The admin sees the extended attributes and host_status, as in GET.
    admin = call(cloud, "2.75", "PUT", f"/servers/{sid}",
                 {"server": {"name": "put-full3"}}).get_json()["server"]
    assert admin["OS-EXT-SRV-ATTR:host"] in HOSTS and admin["host_status"] == "UP"
    assert "OS-EXT-SRV-ATTR:user_data" in admin
    delete(cloud, sid)


def test_2_74_update_answers_the_core_attributes(cloud: InProcessCloud, image: str) -> None:
    sid = boot(cloud, image, "put-core")
    updated = call(cloud, "2.74", "PUT", f"/servers/{sid}",
                   {"server": {"name": "put-core2"}}).get_json()
    S.validate(S.UPDATE_SERVER_V273, updated)
    for key in CORE_ONLY_MISSING:
        assert key not in updated["server"], key
    assert set(updated["server"]) < set(shown(cloud, "2.74", sid))
    delete(cloud, sid)


def test_2_75_rebuild_answers_the_show_body(cloud: InProcessCloud, image: str,
                                            member: str) -> None:
    sid = boot(cloud, image, "rebuild-full")
    for kw in ({}, {"token": member}):
        rebuilt = action(cloud, "2.75", sid, {"rebuild": {
            "imageRef": image, "adminPass": "s3cret", "user_data": "aGVsbG8="}},
            **kw).get_json()
        S.validate(S.REBUILD_SERVER_V275, rebuilt)
        server = rebuilt["server"]
        assert server["adminPass"] == "s3cret" and server["user_data"] == "aGVsbG8="
        assert "OS-EXT-SRV-ATTR:user_data" not in server
        cloud.wait_for(sid, "ACTIVE")
        get = shown(cloud, "2.75", sid, **kw)
        assert set(server) == (set(get) - {"OS-EXT-SRV-ATTR:user_data"}
                               | {"adminPass", "user_data"})
        assert get.get("OS-EXT-SRV-ATTR:user_data", "aGVsbG8=") == "aGVsbG8="
    delete(cloud, sid)


def test_2_74_rebuild_answers_the_core_attributes(cloud: InProcessCloud, image: str) -> None:
    sid = boot(cloud, image, "rebuild-core")
    rebuilt = action(cloud, "2.74", sid, {"rebuild": {"imageRef": image}}).get_json()
    S.validate(S.REBUILD_SERVER_V273, rebuilt)
    server = rebuilt["server"]
    assert "adminPass" in server and "key_name" in server and "user_data" in server
    for key in CORE_ONLY_MISSING[1:] + ("OS-EXT-SRV-ATTR:user_data",):
        assert key not in server, key
    cloud.wait_for(sid, "ACTIVE")
    delete(cloud, sid)


# -- 3. flavor swap ---------------------------------------------------------------------

def _flavor_body(flavor_id: str, swap: int) -> dict[str, Any]:
    return {"flavor": {"name": f"mv275-{flavor_id}", "ram": 64, "vcpus": 1, "disk": 1,
                       "id": flavor_id, "swap": swap}}


def test_flavor_swap_2_74_empty_string_2_75_zero(cloud: InProcessCloud) -> None:
    created = call(cloud, "2.75", "POST", "/flavors", _flavor_body("mv275-noswap", 0)
                   ).get_json()
    S.validate(S.GET_FLAVOR_V275, created)
    assert created["flavor"]["swap"] == 0
    old = call(cloud, "2.74", "POST", "/flavors", _flavor_body("mv275-noswap-old", 0)
               ).get_json()
    assert old["flavor"]["swap"] == ""
    swapped = call(cloud, "2.75", "POST", "/flavors", _flavor_body("mv275-swap", 512)
                   ).get_json()
    assert swapped["flavor"]["swap"] == 512

    for version, none in (("2.74", ""), ("2.75", 0)):
        for fid, swap in (("mv275-noswap", none), ("mv275-swap", 512)):
            body = call(cloud, version, "GET", f"/flavors/{fid}").get_json()
            assert body["flavor"]["swap"] == swap and type(body["flavor"]["swap"]) is type(swap)
        detail = call(cloud, version, "GET", "/flavors/detail").get_json()
        swaps = {f["id"]: f["swap"] for f in detail["flavors"]}
        assert swaps["mv275-noswap"] == none and swaps["mv275-swap"] == 512
        if version == "2.75":
            S.validate(S.LIST_FLAVORS_DETAIL_V275, detail)
            assert all(isinstance(v, int) for v in swaps.values())
        else:
            assert "" in swaps.values()
        updated = call(cloud, version, "PUT", "/flavors/mv275-noswap",
                       {"flavor": {"description": f"at {version}"}}).get_json()
        assert updated["flavor"]["swap"] == none
    for fid in ("mv275-noswap", "mv275-noswap-old", "mv275-swap"):
        call(cloud, "2.75", "DELETE", f"/flavors/{fid}", status=202)


def test_embedded_flavor_swap_is_an_integer_at_both(cloud: InProcessCloud,
                                                    image: str) -> None:
    sid = boot(cloud, image, "embedded-swap")
    for version in ("2.74", "2.75"):
        assert shown(cloud, version, sid)["flavor"]["swap"] == 0
    delete(cloud, sid)


# -- 4. os-hypervisors with_servers --------------------------------------------------

def _by_host(hypervisors: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {h["hypervisor_hostname"]: h for h in hypervisors}


def test_hypervisors_servers_field(cloud: InProcessCloud, image: str) -> None:
    sid = boot(cloud, image, "on-a-host")
    host = shown(cloud, "2.75", sid)["OS-EXT-SRV-ATTR:host"]
    empty = [h for h in HOSTS if h != host]
    hosted = [{"name": "on-a-host", "uuid": sid}]
    for path in ("/os-hypervisors", "/os-hypervisors/detail"):
        for version in ("2.74", "2.75"):
            # Not asked: never there.
            plain = _by_host(call(cloud, version, "GET", path).get_json()["hypervisors"])
            assert all("servers" not in h for h in plain.values())
            listed = _by_host(call(cloud, version, "GET", f"{path}?with_servers=true"
                                   ).get_json()["hypervisors"])
            assert listed[host]["servers"] == hosted
            for name in empty:
                if version == "2.74":
                    assert "servers" not in listed[name]
                else:
                    assert listed[name]["servers"] == []
            false = _by_host(call(cloud, version, "GET", f"{path}?with_servers=false"
                                  ).get_json()["hypervisors"])
            assert all("servers" not in h for h in false.values())
    ids = _by_host(call(cloud, "2.75", "GET", "/os-hypervisors").get_json()["hypervisors"])
    for version in ("2.74", "2.75"):
        one = call(cloud, version, "GET", f"/os-hypervisors/{ids[host]['id']}"
                   "?with_servers=true").get_json()["hypervisor"]
        assert one["servers"] == hosted
        for name in empty:
            one = call(cloud, version, "GET", f"/os-hypervisors/{ids[name]['id']}"
                       "?with_servers=1").get_json()["hypervisor"]
            if version == "2.74":
                assert "servers" not in one
            else:
                assert one["servers"] == []
            plain = call(cloud, version, "GET", f"/os-hypervisors/{ids[name]['id']}"
                         ).get_json()["hypervisor"]
            assert "servers" not in plain
    delete(cloud, sid)
