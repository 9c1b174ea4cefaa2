"""Unmodified python-novaclient (``novaclient.client.Client("2.1", session=...)``
on a keystoneauth session) against the all-in-one and against the
multi-process deployment (RabbitMQ + PostgreSQL): flavors (+ extra specs,
access), key pairs, servers (create with key, metadata and min/max count;
list, get, update, delete; every action), server metadata, instance actions,
services, hypervisors, availability zones, limits, quota sets (and a create
past them), usage, versions, the glance proxy's image lookup, and policy as novaclient sees it (403 as
``novaclient.exceptions.Forbidden``). The ``nova`` CLI (deprecated, still
shipped by 18.x) runs a few commands against the all-in-one."""
from __future__ import annotations

import re
from typing import Any

import pytest
from keystoneauth1 import loading, session as ks_session
from novaclient import client as nova_client
from novaclient import exceptions as nova_exc

from stratus.api.compute import microversion
from tests.functional import clients
from tests.functional.clients import wait_for

pytestmark = pytest.mark.functional

FINGERPRINT = re.compile(r"^([0-9a-f]{2}:){15}[0-9a-f]{2}$")


@pytest.fixture(scope="module", params=clients.KINDS)
def cloud(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    start = clients.all_in_one if request.param == "all-in-one" else clients.deployment
    with start(str(tmp_path_factory.mktemp(request.param))) as c:
        c.kind = request.param
        yield c


def make_nova(url: str, username: str, password: str, project: str = "admin",
              version: str = "2.1") -> Any:
    auth = loading.get_plugin_loader("password").load_from_options(
        auth_url=f"{url}/identity", username=username, password=password,
        project_name=project, user_domain_name="Default", project_domain_name="Default")
    return nova_client.Client(version, session=ks_session.Session(auth=auth, timeout=60),
                              region_name="RegionOne")


@pytest.fixture(scope="module")
def nova(cloud: Any) -> Any:
    return make_nova(cloud.url, "admin", cloud.password)


@pytest.fixture(scope="module")
def image(cloud: Any) -> Any:
    conn = cloud.connect()
    return conn.image.create_image(name="nova-image", data=b"\0" * 4096, disk_format="raw",
                                   container_format="bare", visibility="public")


def settled(nova: Any, server_id: str, status: str) -> Any:
    return wait_for(lambda: nova.servers.get(server_id),
                    lambda s: s.status == status and
                    getattr(s, "OS-EXT-STS:task_state") is None,
                    what=f"{server_id} {status}")


def gone(nova: Any, server_id: str) -> None:
    def fetch() -> Any:
        try:
            return nova.servers.get(server_id)
        except nova_exc.NotFound:
            return None
    wait_for(fetch, lambda s: s is None, what=f"{server_id} deleted")


def test_flavors(nova: Any) -> None:
    names = {f.name for f in nova.flavors.list()}
    assert {"m1.tiny", "m1.small"} <= names
    tiny = nova.flavors.get("1")
    assert (tiny.name, tiny.ram, tiny.vcpus, tiny.disk) == ("m1.tiny", 512, 1, 1)
    assert tiny.is_public is True and tiny.ephemeral == 0 and tiny.swap == ""
    assert tiny.links[0]["href"].endswith("/compute/v2.1/flavors/1")
    assert nova.flavors.find(name="m1.small").id == "2"
    assert [f.id for f in nova.flavors.list(detailed=False, limit=2)] == ["1", "2"]

    flavor = nova.flavors.create("nc-private", 256, 2, 5, flavorid="auto", ephemeral=1,
                                 swap=64, rxtx_factor=2.0, is_public=False)
    try:
        assert (flavor.ram, flavor.vcpus, flavor.disk, flavor.ephemeral, flavor.swap,
                flavor.rxtx_factor, flavor.is_public) == (256, 2, 5, 1, 64, 2.0, False)
        assert getattr(flavor, "OS-FLV-DISABLED:disabled") is False
        flavor.set_keys({"hw:cpu_policy": "dedicated", "quota:cpu_shares": 512})
        assert flavor.get_keys() == {"hw:cpu_policy": "dedicated", "quota:cpu_shares": "512"}
        flavor.unset_keys(["quota:cpu_shares"])
        assert nova.flavors.get(flavor.id).get_keys() == {"hw:cpu_policy": "dedicated"}

        project_id = nova.client.session.get_project_id()
        access = nova.flavor_access.add_tenant_access(flavor, project_id)
        assert [(a.flavor_id, a.tenant_id) for a in access] == [(flavor.id, project_id)]
        assert [a.tenant_id for a in nova.flavor_access.list(flavor=flavor)] == [project_id]
        assert nova.flavor_access.remove_tenant_access(flavor, project_id) == []
        private = [f.id for f in nova.flavors.list(is_public=False)]
        assert flavor.id in private
    finally:
        nova.flavors.delete(flavor)
    with pytest.raises(nova_exc.NotFound):
        nova.flavors.get(flavor.id)


def test_keypairs(nova: Any) -> None:
    generated = nova.keypairs.create("nc-gen")
    assert generated.private_key.startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert generated.public_key.startswith("ssh-rsa ")
    assert FINGERPRINT.match(generated.fingerprint)
    assert generated.user_id == nova.client.session.get_user_id()
    imported = nova.keypairs.create("nc-imported", public_key=generated.public_key)
    assert not hasattr(imported, "private_key")
    assert imported.fingerprint == generated.fingerprint
    assert {k.name for k in nova.keypairs.list()} >= {"nc-gen", "nc-imported"}
    shown = nova.keypairs.get("nc-gen")
    assert (shown.name, shown.public_key, shown.deleted) == (
        "nc-gen", generated.public_key, False)
    assert shown.id == "nc-gen"  # novaclient: a key pair's id is its name
    assert isinstance(shown._info["id"], int) and shown.created_at
    with pytest.raises(nova_exc.Conflict):
        nova.keypairs.create("nc-gen")
    nova.keypairs.delete("nc-imported")
    nova.keypairs.delete(generated)
    assert not {k.name for k in nova.keypairs.list()} & {"nc-gen", "nc-imported"}
    with pytest.raises(nova_exc.NotFound):
        nova.keypairs.get("nc-gen")


def test_servers_lifecycle(cloud: Any, nova: Any, image: Any) -> None:
    # novaclient's glance proxy: name and id lookups on the image endpoint.
    found = nova.glance.find_image("nova-image")
    assert (found.id, found.name) == (image.id, "nova-image")
    assert nova.glance.find_image(image.id).id == image.id
    with pytest.raises(nova_exc.NotFound):
        nova.glance.find_image("no-such-image")

    nova.keypairs.create("nc-server-key")
    flavor = nova.flavors.get("42")
    created = nova.servers.create("nc", found, flavor, key_name="nc-server-key",
                                  meta={"role": "test"}, min_count=2, max_count=2)
    assert created.id and created.adminPass
    servers = wait_for(lambda: nova.servers.list(search_opts={"name": "^nc-"}),
                       lambda ss: len(ss) == 2 and all(s.status == "ACTIVE" for s in ss),
                       what="two ACTIVE servers")
    assert sorted(s.name for s in servers) == ["nc-1", "nc-2"]
    server = nova.servers.get(created.id)
    assert server.status == "ACTIVE" and server.key_name == "nc-server-key"
    assert server.metadata == {"role": "test"}
    assert server.image["id"] == image.id and server.flavor["id"] == "42"
    assert server.tenant_id == nova.client.session.get_project_id()
    assert server.user_id == nova.client.session.get_user_id()
    assert server.addresses == {} and server.networks == {}
    assert getattr(server, "OS-EXT-STS:vm_state") == "active"
    assert getattr(server, "OS-EXT-STS:power_state") == 1
    assert getattr(server, "OS-EXT-AZ:availability_zone") == "nova"
    assert getattr(server, "OS-EXT-SRV-ATTR:host") in ("vm", "compute1", "compute2")
    assert getattr(server, "OS-EXT-SRV-ATTR:instance_name").startswith("instance-")
    assert len(server.hostId) == 56 and server.created and server.updated
    brief = {s.id: s for s in nova.servers.list(detailed=False)}
    assert set(brief) >= {s.id for s in servers}
    assert nova.servers.list(search_opts={"all_tenants": True, "name": "^nc-1$"})[0].name \
        == "nc-1"

    renamed = nova.servers.update(server, name="nc-renamed")
    assert renamed.name == "nc-renamed" and nova.servers.get(server.id).name == "nc-renamed"

    for action, status, power in (("stop", "SHUTOFF", 4), ("start", "ACTIVE", 1),
                                  ("reboot", "ACTIVE", 1), ("pause", "PAUSED", 3),
                                  ("unpause", "ACTIVE", 1), ("suspend", "SUSPENDED", 7),
                                  ("resume", "ACTIVE", 1), ("lock", "ACTIVE", 1),
                                  ("unlock", "ACTIVE", 1)):
        getattr(server, action)()
        after = settled(nova, server.id, status)
        assert getattr(after, "OS-EXT-STS:power_state") == power, action
    nova.servers.reboot(server, reboot_type="HARD")
    settled(nova, server.id, "ACTIVE")

    nova.servers.set_meta(server, {"a": "1", "b": "2"})
    nova.servers.set_meta_item(server, "c", "3")
    assert nova.servers.get(server).metadata == {"role": "test", "a": "1", "b": "2", "c": "3"}
    nova.servers.delete_meta(server, ["a", "role"])
    assert nova.servers.get(server).metadata == {"b": "2", "c": "3"}

    actions = nova.instance_action.list(server)
    names = [a.action for a in actions]
    assert names[-1] == "create"
    assert {"stop", "start", "reboot", "pause", "unpause", "suspend", "resume", "lock",
            "unlock"} <= set(names)
    for action in actions:
        assert action.instance_uuid == server.id and action.request_id.startswith("req-")
        assert action.project_id == server.tenant_id and action.user_id == server.user_id
    stop = next(a for a in actions if a.action == "stop")
    detail = nova.instance_action.get(server, stop.request_id)
    assert [e["event"] for e in detail.events] == ["compute_stop_instance"]
    assert detail.events[0]["result"] == "Success" and detail.events[0]["finish_time"]

    for s in servers:
        nova.servers.delete(s)
    for s in servers:
        gone(nova, s.id)
    nova.keypairs.delete("nc-server-key")
    with pytest.raises(nova_exc.NotFound):
        nova.servers.get(server.id)


def test_microversion_2_19(cloud: Any, image: Any) -> None:
    """novaclient at 2.19, the highest version Stratus advertises: what
    microversions 2.2-2.19 changed, through novaclient's versioned methods."""
    nova = make_nova(cloud.url, "admin", cloud.password, version="2.19")
    assert nova.api_version.get_string() == "2.19"
    # 2.2 key pair types, 2.10 on behalf of a user.
    cert = nova.keypairs.create("nc-cert", key_type="x509")
    assert cert.type == "x509" and "BEGIN CERTIFICATE" in cert.public_key
    assert nova.keypairs.get("nc-cert").type == "x509"
    user_id = nova.client.session.get_user_id()
    assert nova.keypairs.get("nc-cert", user_id=user_id).name == "nc-cert"
    nova.keypairs.delete("nc-cert", user_id=user_id)
    # 2.19 description; 2.3 extended attributes; 2.9 locked; 2.16 host_status.
    server = nova.servers.create("nc-219", image.id, "1", description="described")
    server = settled(nova, server.id, "ACTIVE")
    assert server.description == "described" and server.locked is False
    assert server.host_status == "UP"
    assert getattr(server, "OS-EXT-SRV-ATTR:root_device_name") == "/dev/vda"
    assert getattr(server, "OS-EXT-SRV-ATTR:hostname") == "nc-219"
    nova.servers.update(server, description="redescribed")
    assert nova.servers.get(server.id).description == "redescribed"
    server.lock()
    assert nova.servers.get(server.id).locked is True
    server.unlock()
    # 2.17 trigger_crash_dump.
    server.trigger_crash_dump()
    wait_for(lambda: [a.action for a in nova.instance_action.list(server)],
             lambda names: "trigger_crash_dump" in names, what="a trigger_crash_dump action")
    # 2.13 group owners, 2.15 soft policies.
    group = nova.server_groups.create("nc-soft", policies=["soft-anti-affinity"])
    assert group.policies == ["soft-anti-affinity"]
    assert group.project_id == nova.client.session.get_project_id()
    assert group.user_id == user_id
    nova.server_groups.delete(group.id)
    # 2.11 force-down, on a host with no server of this test.
    hosts = {h.hypervisor_hostname for h in nova.hypervisors.list()}
    host = sorted(hosts)[0]
    forced = nova.services.force_down(host, "nova-compute", True)
    assert forced.forced_down is True
    try:
        [shown] = nova.services.list(host=host, binary="nova-compute")
        assert shown.forced_down is True and shown.state == "down"
    finally:
        nova.services.force_down(host, "nova-compute", False)
    nova.servers.delete(server)
    gone(nova, server.id)


def test_services_hypervisors_zones_limits(cloud: Any, nova: Any) -> None:
    services = nova.services.list()
    computes = [s for s in services if s.binary == "stratus-compute"]
    hosts = {"vm"} if cloud.kind == "all-in-one" else {"compute1", "compute2"}
    assert {s.host for s in computes} == hosts
    assert all((s.status, s.state, s.zone) == ("enabled", "up", "nova") for s in computes)
    assert {s.binary for s in services} >= {"stratus-conductor", "stratus-scheduler"}
    assert {s.host for s in nova.services.list(binary="nova-compute")} == hosts
    host = sorted(hosts)[0]
    disabled = nova.services.disable_log_reason(host, "nova-compute", "maintenance")
    assert (disabled.status, disabled.disabled_reason) == ("disabled", "maintenance")
    [shown] = nova.services.list(host=host, binary="nova-compute")
    assert (shown.status, shown.disabled_reason) == ("disabled", "maintenance")
    assert nova.services.enable(host, "nova-compute").status == "enabled"

    hypervisors = nova.hypervisors.list()
    assert {h.hypervisor_hostname for h in hypervisors} == hosts
    one = nova.hypervisors.get(hypervisors[0].id)
    assert one.hypervisor_type == "fake" and one.state == "up" and one.status == "enabled"
    assert one.vcpus > 0 and one.memory_mb > 0 and one.service["host"] in hosts
    assert isinstance(one.cpu_info, str)
    found = nova.hypervisors.search(host, servers=True)
    assert [h.hypervisor_hostname for h in found] == [host]
    stats = nova.hypervisors.statistics()
    assert stats.count == len(hosts) and stats.vcpus == sum(h.vcpus for h in hypervisors)
    with pytest.raises(nova_exc.HTTPNotImplemented):
        nova.hypervisors.uptime(one)

    zones = {z.zoneName: z for z in nova.availability_zones.list(detailed=False)}
    assert list(zones) == ["nova"] and zones["nova"].zoneState == {"available": True}
    detailed = {z.zoneName: z for z in nova.availability_zones.list()}
    assert set(detailed["nova"].hosts) == hosts
    assert "internal" in detailed

    limits = nova.limits.get()
    absolute = {item.name: item.value for item in limits.absolute}
    assert absolute["maxTotalInstances"] == 10 and absolute["maxTotalCores"] == 20
    assert absolute["totalInstancesUsed"] >= 0 and list(limits.rate) == []

    current = nova.versions.get_current()
    assert (current.id, current.version, current.min_version) == (
        "v2.1", microversion.MAX_VERSION, "2.1")


def test_policy_as_novaclient_sees_it(cloud: Any, image: Any) -> None:
    """A member of a project: its own servers and key pairs work; the admin
    APIs answer 403 (novaclient's Forbidden)."""
    conn = cloud.connect()
    project = conn.identity.create_project(name="nc-project", domain_id="default")
    user = conn.identity.create_user(name="nc-member", password="pw", domain_id="default")
    member_role = conn.identity.find_role("member")
    conn.identity.assign_project_role_to_user(project, user, member_role)
    member = make_nova(cloud.url, "nc-member", "pw", "nc-project")

    assert member.servers.list() == []
    for call in (member.hypervisors.list, member.services.list,
                 lambda: member.flavors.create("nope", 64, 1, 1),
                 lambda: member.servers.list(search_opts={"all_tenants": True})):
        with pytest.raises(nova_exc.Forbidden):
            call()
    keypair = member.keypairs.create("member-key")
    server = member.servers.create("member-vm", image.id, "42", key_name="member-key")
    settled(member, server.id, "ACTIVE")
    assert [s.id for s in member.servers.list()] == [server.id]
    # The admin sees it with all_tenants only; the member cannot see the admin's.
    admin = make_nova(cloud.url, "admin", cloud.password)
    assert server.id not in [s.id for s in admin.servers.list()]
    assert server.id in [s.id for s in admin.servers.list(search_opts={"all_tenants": 1})]
    member.servers.delete(server)
    gone(member, server.id)
    keypair.delete()


def test_quotas(nova: Any, image: Any) -> None:
    """os-quota-sets as novaclient drives them, and a create refused by the quota."""
    project_id = nova.client.session.get_project_id()
    quotas = nova.quotas.get(project_id)
    assert (quotas.id, quotas.instances, quotas.cores, quotas.ram, quotas.key_pairs,
            quotas.metadata_items) == (project_id, 10, 20, 51200, 100, 128)
    assert nova.quotas.defaults(project_id).instances == 10
    updated = nova.quotas.update(project_id, instances=1, key_pairs=5)
    assert (updated.instances, updated.key_pairs, updated.cores) == (1, 5, 20)
    server = nova.servers.create("nc-quota", image.id, "42")
    try:
        settled(nova, server.id, "ACTIVE")
        with pytest.raises(nova_exc.Forbidden) as refused:
            nova.servers.create("nc-over-quota", image.id, "42")
        assert "Quota exceeded for instances" in str(refused.value)
        detail = nova.quotas.get(project_id, detail=True)
        assert detail.instances == {"in_use": 1, "limit": 1, "reserved": 0}
        absolute = {item.name: item.value for item in nova.limits.get().absolute}
        assert (absolute["maxTotalInstances"], absolute["totalInstancesUsed"],
                absolute["maxTotalKeypairs"]) == (1, 1, 5)
    finally:
        nova.servers.delete(server)
        gone(nova, server.id)
        nova.quotas.delete(project_id)
    assert nova.quotas.get(project_id).instances == 10


def test_usage(nova: Any, image: Any) -> None:
    """os-simple-tenant-usage: a server that ran and was deleted counts, terminated."""
    import datetime

    server = nova.servers.create("nc-usage", image.id, "42")
    settled(nova, server.id, "ACTIVE")
    nova.servers.delete(server)
    gone(nova, server.id)
    end = datetime.datetime.utcnow() + datetime.timedelta(minutes=1)
    start = end - datetime.timedelta(days=1)
    project_id = nova.client.session.get_project_id()
    usages = {u.tenant_id: u for u in nova.usage.list(start, end, detailed=True)}
    usage = usages[project_id]
    assert usage.total_hours > 0 and usage.total_vcpus_usage > 0
    [entry] = [s for s in usage.server_usages if s["instance_id"] == server.id]
    assert (entry["name"], entry["state"], entry["flavor"], entry["vcpus"],
            entry["memory_mb"], entry["local_gb"]) == ("nc-usage", "terminated", "m1.nano",
                                                       1, 128, 1)
    assert entry["ended_at"] > entry["started_at"] and entry["hours"] > 0
    mine = nova.usage.get(project_id, start, end)
    assert mine.tenant_id == project_id and len(mine.server_usages) == len(
        usage.server_usages)
    assert mine.total_memory_mb_usage == pytest.approx(usage.total_memory_mb_usage)


@pytest.mark.parametrize("cloud", ["all-in-one"], indirect=True)  # CLI start-up costs
def test_nova_cli(cloud: Any, image: Any) -> None:
    """The deprecated ``nova`` CLI: boot, list, show, delete and a few reads."""
    booted = clients.table(clients.nova_cli(cloud, "boot", "--image", image.id, "--flavor",
                                            "m1.nano", "--meta", "k=v", "--poll", "cli-vm"))
    props = {row["Property"]: row["Value"] for row in booted}
    server_id = props["id"]
    rows = clients.table(clients.nova_cli(cloud, "list"))
    assert [(r["ID"], r["Name"], r["Status"], r["Power State"]) for r in rows] == [
        (server_id, "cli-vm", "ACTIVE", "Running")]
    shown = {r["Property"]: r["Value"]
             for r in clients.table(clients.nova_cli(cloud, "show", server_id))}
    # nova negotiates 2.75: the embedded flavor (2.47) is shown field by field.
    assert shown["status"] == "ACTIVE" and shown["flavor:original_name"] == "m1.nano"
    assert shown["metadata"] == '{"k": "v"}' and shown["OS-EXT-STS:vm_state"] == "active"
    assert {r["Name"] for r in clients.table(clients.nova_cli(cloud, "flavor-list"))} >= {
        "m1.tiny", "m1.nano"}
    assert [r["Hypervisor hostname"] for r in clients.table(
        clients.nova_cli(cloud, "hypervisor-list"))] == ["vm"]
    clients.nova_cli(cloud, "delete", server_id)
    wait_for(lambda: clients.table(clients.nova_cli(cloud, "list")), lambda rows: rows == [],
             what="nova list empty")


def test_a_policy_file_changes_what_novaclient_may_do(tmp_path: Any) -> None:
    """``[oslo_policy] policy_file`` on an all-in-one: members may list the
    hypervisors (still not show one)."""
    policy = tmp_path / "policy.yaml"
    policy.write_text('"os_compute_api:os-hypervisors:list": "role:member"\n')
    config = tmp_path / "stratus.conf"
    config.write_text(f"[oslo_policy]\npolicy_file = {policy}\n")
    from tests.functional.harness import AllInOne

    aio = AllInOne(str(tmp_path / "state"), ["--config", str(config)])
    aio.start()
    try:
        conn = aio.connect()
        project = conn.identity.create_project(name="pol-project", domain_id="default")
        user = conn.identity.create_user(name="pol-member", password="pw", domain_id="default")
        conn.identity.assign_project_role_to_user(project, user, conn.identity.find_role("member"))
        member = make_nova(aio.url, "pol-member", "pw", "pol-project")
        [hypervisor] = member.hypervisors.list(detailed=False)
        assert hypervisor.hypervisor_hostname == "vm"
        with pytest.raises(nova_exc.Forbidden) as forbidden:
            member.hypervisors.get(hypervisor.id)
        assert "os_compute_api:os-hypervisors:show" in str(forbidden.value)
        assert member.servers.list() == []
    finally:
        assert aio.stop() == 0, aio.process.log()
