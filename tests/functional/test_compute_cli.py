"""The unmodified ``openstack`` CLI (python-openstackclient) against the
all-in-one and the multi-process deployment (RabbitMQ + PostgreSQL): the
compute commands test_openstack_cli.py does not run (server show's fields,
list --long, set/unset --property, pause/unpause/suspend/resume/lock/unlock,
event list/show, key pairs, flavors with properties and access, hypervisors,
compute services, availability zones, limits, quotas, aggregates, usage), image list
filters, and the identity catalog (catalog, endpoint, service, region).

Commands run in batches through OSC's interactive mode (one Python start-up
per batch, see clients.osc_batch); a few run as plain invocations too."""
from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.functional import clients
from tests.functional.clients import osc, osc_batch, wait_for

pytestmark = pytest.mark.functional

# What ``openstack server show`` prints at microversion 2.1 for an admin
# (OSC's names for openstacksdk's attributes).
SERVER_SHOW_FIELDS = {
    "OS-DCF:diskConfig", "OS-EXT-AZ:availability_zone", "OS-EXT-SRV-ATTR:host",
    "OS-EXT-SRV-ATTR:hypervisor_hostname", "OS-EXT-SRV-ATTR:instance_name",
    "OS-EXT-STS:power_state", "OS-EXT-STS:task_state", "OS-EXT-STS:vm_state",
    "OS-SRV-USG:launched_at", "OS-SRV-USG:terminated_at", "accessIPv4", "accessIPv6",
    "addresses", "config_drive", "created", "flavor", "hostId", "id", "image", "key_name",
    "name", "progress", "project_id", "properties", "status", "updated", "user_id",
    "volumes_attached",
}


@pytest.fixture(scope="module", params=clients.KINDS)
def cloud(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    start = clients.all_in_one if request.param == "all-in-one" else clients.deployment
    with start(str(tmp_path_factory.mktemp(request.param))) as c:
        c.kind = request.param
        c.hosts = ["vm"] if request.param == "all-in-one" else ["compute1", "compute2"]
        c.conn = conn = c.connect()
        c.image = conn.image.create_image(name="cli-image", data=b"\0" * 4096,
                                          disk_format="raw", container_format="bare",
                                          visibility="public")
        yield c


def settled(cloud: Any, server_id: str, status: str) -> Any:
    conn = cloud.conn
    return wait_for(lambda: conn.compute.get_server(server_id),
                    lambda s: s.status == status and not s.task_state,
                    what=f"{server_id} {status}")


def test_server_commands(cloud: Any, tmp_path: Any) -> None:
    public = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    (tmp_path / "key.pub").write_text(public + " imported\n")
    private_file = tmp_path / "gen.pem"
    imported, generated, keypairs, key_shown, created, other = osc_batch(
        cloud,
        f"keypair create --public-key {tmp_path / 'key.pub'} cli-imported -f json",
        f"keypair create --private-key {private_file} cli-gen -f json",
        "keypair list -f json",
        "keypair show cli-gen -f json",
        "server create --image cli-image --flavor m1.nano --key-name cli-gen "
        "--property a=b --property c=d cli-vm -f json",
        "server create --image cli-image --flavor m1.nano cli-other -f json",
    )
    assert imported["name"] == "cli-imported" and imported["type"] == "ssh"
    assert "PRIVATE KEY" in private_file.read_text() and generated["name"] == "cli-gen"
    assert {k["Name"] for k in keypairs} == {"cli-imported", "cli-gen"}
    assert all(len(k["Fingerprint"].split(":")) == 16 for k in keypairs)
    assert key_shown["name"] == "cli-gen" and key_shown["fingerprint"] == \
        generated["fingerprint"] and key_shown["user_id"]
    assert created["status"] in ("BUILD", "ACTIVE") and created["adminPass"]
    vm, vm2 = created["id"], other["id"]
    settled(cloud, vm, "ACTIVE")
    settled(cloud, vm2, "ACTIVE")

    shown, listed, long_listed, props = osc_batch(
        cloud,
        "server show cli-vm -f json",
        "server list -f json",
        "server list --long -f json",
        "server set --property k=v cli-vm",
        "server unset --property a cli-vm",
        "server show cli-vm -c properties -f json",
        "server pause cli-vm",
        "server suspend cli-other",
    )
    missing = SERVER_SHOW_FIELDS - set(shown)
    assert not missing, f"server show lacks {missing}: {shown}"
    assert shown["id"] == vm and shown["status"] == "ACTIVE" and shown["name"] == "cli-vm"
    # OSC negotiates 2.75: the embedded flavor (2.47) has no id, OSC shows it
    # whole, and lists it by name only (no Flavor ID column).
    assert (shown["flavor"]["original_name"], shown["flavor"]["vcpus"]) == ("m1.nano", 1)
    assert shown["image"] == f"cli-image ({cloud.image.id})"
    assert shown["key_name"] == "cli-gen" and shown["properties"] == {"a": "b", "c": "d"}
    assert (shown["OS-EXT-STS:vm_state"], shown["OS-EXT-STS:power_state"],
            shown["OS-EXT-STS:task_state"]) == ("active", 1, None)
    assert shown["OS-EXT-AZ:availability_zone"] == "nova" and shown["addresses"] == {}
    assert shown["OS-EXT-SRV-ATTR:host"] in cloud.hosts
    assert shown["OS-EXT-SRV-ATTR:hypervisor_hostname"] in cloud.hosts
    assert shown["volumes_attached"] == [] and len(shown["hostId"]) == 56
    assert shown["OS-SRV-USG:launched_at"] and shown["OS-SRV-USG:terminated_at"] is None
    assert {(s["Name"], s["Status"], s["Image"], s["Flavor"]) for s in listed} == {
        ("cli-vm", "ACTIVE", "cli-image", "m1.nano"),
        ("cli-other", "ACTIVE", "cli-image", "m1.nano")}
    row = next(s for s in long_listed if s["ID"] == vm)
    assert (row["Status"], row["Task State"], row["Power State"], row["Networks"],
            row["Image Name"], row["Image ID"], row["Flavor"],
            row["Availability Zone"], row["Properties"]) == (
        "ACTIVE", None, 1, {}, "cli-image", cloud.image.id, "m1.nano", "nova",
        {"a": "b", "c": "d"})
    assert row["Host"] in cloud.hosts
    assert props == {"properties": {"c": "d", "k": "v"}}

    settled(cloud, vm, "PAUSED")
    settled(cloud, vm2, "SUSPENDED")
    paused, suspended = osc_batch(cloud, "server show cli-vm -f json",
                                  "server show cli-other -f json",
                                  "server unpause cli-vm", "server resume cli-other")
    assert (paused["status"], paused["OS-EXT-STS:power_state"]) == ("PAUSED", 3)
    assert (suspended["status"], suspended["OS-EXT-STS:power_state"]) == ("SUSPENDED", 7)
    settled(cloud, vm, "ACTIVE")
    settled(cloud, vm2, "ACTIVE")

    locked, events = osc_batch(cloud, "server lock cli-vm", "server show cli-vm -f json",
                               "server unlock cli-vm", "server event list cli-vm -f json")
    assert locked["status"] == "ACTIVE"
    assert [e["Action"] for e in events] == ["unlock", "lock", "unpause", "pause", "create"]
    assert all(e["Request ID"].startswith("req-") and e["Server ID"] == vm for e in events)
    pause_id = next(e["Request ID"] for e in events if e["Action"] == "pause")
    create_id = next(e["Request ID"] for e in events if e["Action"] == "create")
    pause, create, long_events = osc_batch(
        cloud, f"server event show cli-vm {pause_id} -f json",
        f"server event show cli-vm {create_id} -f json",
        "server event list --long cli-vm -f json")
    assert (pause["action"], pause["request_id"], pause["message"]) == ("pause", pause_id,
                                                                      None)
    assert [e["event"] for e in pause["events"]] == ["compute_pause_instance"]
    assert pause["events"][0]["result"] == "Success"
    assert [e["event"] for e in create["events"]] == ["compute_build_and_run_instance"]
    assert {e["Project ID"] for e in long_events} == {shown["project_id"]}

    osc_batch(cloud, "server delete cli-vm cli-other", "keypair delete cli-gen cli-imported")
    conn = cloud.conn
    for server_id in (vm, vm2):
        wait_for(lambda: conn.compute.find_server(server_id), lambda s: s is None,
                 what=f"{server_id} deleted")
    keys, servers, usage = osc_batch(cloud, "keypair list -f json", "server list -f json",
                                     "usage show -f json")
    assert (keys, servers) == ([], [])
    # os-simple-tenant-usage counts the deleted servers' hours.
    assert len(usage["Servers"]) >= 2 and usage["CPU Hours"] > 0 and usage["RAM MB-Hours"] > 0
    assert "No Server found for cli-vm" in osc(cloud, "server", "show", "cli-vm", ok=False)


@pytest.mark.parametrize("cloud", ["all-in-one"], indirect=True)  # novaclient covers both
def test_flavor_commands(cloud: Any) -> None:
    created, shown, access, listed, public = osc_batch(
        cloud,
        "flavor create --ram 64 --vcpus 2 --disk 1 --ephemeral 1 --swap 32 --private "
        "--property hw:cpu_policy=dedicated cli-flavor -f json",
        "flavor set --property k=v --property x=y cli-flavor",
        "flavor show cli-flavor -f json",
        "flavor unset --property x cli-flavor",
        "flavor set --project admin cli-flavor",
        "flavor show cli-flavor -f json",
        "flavor list --long --all -f json",
        "flavor list -f json",
    )
    assert (created["ram"], created["vcpus"], created["disk"], created["swap"],
            created["OS-FLV-EXT-DATA:ephemeral"], created["os-flavor-access:is_public"]) == (
        64, 2, 1, 32, 1, False)
    assert created["properties"] == {"hw:cpu_policy": "dedicated"}
    assert shown["properties"] == {"hw:cpu_policy": "dedicated", "k": "v", "x": "y"}
    assert access["properties"] == {"hw:cpu_policy": "dedicated", "k": "v"}
    project_id = cloud.conn.current_project_id
    assert access["access_project_ids"] == [project_id]
    row = next(f for f in listed if f["Name"] == "cli-flavor")
    assert (row["RAM"], row["VCPUs"], row["Ephemeral"], row["Swap"], row["Is Public"],
            row["Properties"]) == (64, 2, 1, 32, False, {"hw:cpu_policy": "dedicated",
                                                        "k": "v"})
    # The admin's project has access: Nova lists the private flavor with the public ones.
    assert {"m1.tiny", "m1.nano", "cli-flavor"} <= {f["Name"] for f in public}
    osc_batch(cloud, "flavor unset --project admin cli-flavor", "flavor delete cli-flavor")
    assert "No Flavor found for cli-flavor" in osc(cloud, "flavor", "show", "cli-flavor",
                                                   ok=False)


def test_admin_views(cloud: Any) -> None:
    host = cloud.hosts[0]
    (zones, zones_long, hypervisors, hypervisor, stats, services, computes, limits,
     aggregates, quota, quota_set, quota_reset) = osc_batch(
        cloud,
        "availability zone list -f json",
        "availability zone list --long -f json",
        "hypervisor list -f json",
        f"hypervisor show {host} -f json",
        "hypervisor stats show -f json",
        "compute service list -f json",
        "compute service list --service nova-compute --long -f json",
        "limits show --absolute -f json",
        "aggregate list -f json",
        f"compute service set --disable --disable-reason maintenance {host} nova-compute",
        "quota show admin -f json",
        "quota set --key-pairs 7 --instances 3 admin",
        "quota show admin -f json",
        "quota delete --compute admin",
        "quota show admin -f json",
    )
    limits_of = lambda rows: {r["Resource"]: r["Limit"] for r in rows}  # noqa: E731
    assert (limits_of(quota)["instances"], limits_of(quota)["key-pairs"]) == (10, 100)
    assert (limits_of(quota_set)["instances"], limits_of(quota_set)["key-pairs"]) == (3, 7)
    assert limits_of(quota_reset) == limits_of(quota)
    assert {(z["Zone Name"], z["Zone Status"]) for z in zones} == {
        ("nova", "available"), ("internal", "available")}
    nova_rows = [z for z in zones_long if z["Zone Name"] == "nova"]
    assert {(z["Host Name"], z["Service Name"]) for z in nova_rows} == {
        (h, "stratus-compute") for h in cloud.hosts}
    assert all(z["Service Status"].startswith("enabled :-)") for z in nova_rows)
    assert {h["Hypervisor Hostname"] for h in hypervisors} == set(cloud.hosts)
    assert all((h["Hypervisor Type"], h["State"]) == ("fake", "up") for h in hypervisors)
    assert hypervisor["hypervisor_hostname"] == host and hypervisor["aggregates"] == []
    assert hypervisor["service_host"] == host and hypervisor["state"] == "up"
    assert hypervisor["cpu_info"]["arch"] == "x86_64" and hypervisor["vcpus"] > 0
    assert stats["count"] == len(cloud.hosts)
    assert {s["Binary"] for s in services} == {"stratus-conductor", "stratus-scheduler",
                                               "stratus-compute"}
    assert {(c["Host"], c["Zone"], c["Status"], c["State"]) for c in computes} == {
        (h, "nova", "enabled", "up") for h in cloud.hosts}
    absolute = {item["Name"]: item["Value"] for item in limits}
    # openstacksdk's names for maxTotalInstances, maxTotalCores, ...
    assert (absolute["max_total_instances"], absolute["max_total_cores"],
            absolute["max_total_ram_size"], absolute["max_total_keypairs"],
            absolute["max_server_meta"]) == (10, 20, 51200, 100, 128)
    assert absolute["total_instances_used"] >= 0 and "total_ram_used" in absolute
    assert aggregates == []

    [disabled] = osc_batch(cloud, "compute service list --service nova-compute --long -f json",
                            f"compute service set --enable {host} nova-compute")
    row = next(c for c in disabled if c["Host"] == host)
    assert (row["Status"], row["Disabled Reason"]) == ("disabled", "maintenance")


def test_image_list_filters(cloud: Any) -> None:
    conn = cloud.conn
    for name, props in (("cli-a", {"os_distro": "cirros"}), ("cli-b", {"os_distro": "debian"})):
        image = conn.image.create_image(name=name, data=b"x" * 512, disk_format="qcow2",
                                        container_format="bare", **props)
        conn.image.add_tag(image, "cli-tag")
    by_property, by_tag, limited, sorted_desc, long_rows, named = osc_batch(
        cloud,
        "image list --property os_distro=debian -f json",
        "image list --tag cli-tag -f json",
        "image list --limit 1 -f json",
        "image list --sort name:desc -f json",
        "image list --long --tag cli-tag -f json",
        "image list --name cli-a -f json",
    )
    assert [i["Name"] for i in by_property] == ["cli-b"]
    assert sorted(i["Name"] for i in by_tag) == ["cli-a", "cli-b"]
    assert len(limited) == 1 and len(sorted_desc) >= 3
    names = [i["Name"] for i in sorted_desc]
    assert names == sorted(names, reverse=True)
    assert {(i["Disk Format"], i["Container Format"], i["Size"], i["Status"])
            for i in long_rows} == {("qcow2", "bare", 512, "active")}
    assert all(i["Tags"] == ["cli-tag"] for i in long_rows)
    assert [i["Name"] for i in named] == ["cli-a"]


def test_identity_catalog_commands(cloud: Any) -> None:
    conn = cloud.conn
    compute_public = next(e for e in conn.identity.endpoints(interface="public")
                          if e.url.endswith("/compute/v2.1"))
    (catalog, catalog_compute, endpoints, compute_endpoints, endpoint, services, service,
     regions, region) = osc_batch(
        cloud,
        "catalog list -f json",
        "catalog show compute -f json",
        "endpoint list -f json",
        "endpoint list --service compute --interface public -f json",
        f"endpoint show {compute_public.id} -f json",
        "service list --long -f json",
        "service show compute -f json",
        "region list -f json",
        "region show RegionOne -f json",
    )
    assert {(c["Name"], c["Type"]) for c in catalog} == {
        ("keystone", "identity"), ("nova", "compute"), ("glance", "image")}
    assert catalog_compute["type"] == "compute" and len(catalog_compute["endpoints"]) == 3
    assert len(endpoints) == 9
    assert all(e["Region"] == "RegionOne" and e["Enabled"] for e in endpoints)
    assert [(e["Service Name"], e["Service Type"], e["Interface"], e["URL"])
            for e in compute_endpoints] == [("nova", "compute", "public",
                                             f"{cloud.url}/compute/v2.1")]
    assert (endpoint["id"], endpoint["service_name"], endpoint["service_type"],
            endpoint["url"], endpoint["enabled"]) == (
        compute_public.id, "nova", "compute", f"{cloud.url}/compute/v2.1", True)
    assert {(s["Name"], s["Type"], s["Enabled"]) for s in services} == {
        ("keystone", "identity", True), ("nova", "compute", True), ("glance", "image", True)}
    assert (service["name"], service["type"], service["enabled"]) == ("nova", "compute", True)
    assert endpoint["service_id"] == service["id"] == catalog_compute["id"]
    assert [r["Region"] for r in regions] == ["RegionOne"]
    assert region["region"] == "RegionOne" and region["parent_region"] is None


@pytest.mark.parametrize("cloud", ["all-in-one"], indirect=True)
def test_plain_invocations(cloud: Any) -> None:
    """Outside the batch: exit status 0 with the expected output, non-zero with
    the API's message on a 404."""
    zones = osc(cloud, "availability", "zone", "list", "--compute")
    assert {z["Zone Name"] for z in zones} == {"nova", "internal"}  # the detail, as Nova
    assert "No Server found for nope" in osc(cloud, "server", "show", "nope", ok=False)
    assert "No Endpoint found for nope" in osc(cloud, "endpoint", "show", "nope", ok=False)


# On the all-in-one: test_identity_cli.py and test_image_cli.py.
@pytest.mark.parametrize("cloud", ["deployment"], indirect=True)
def test_identity_and_image_commands_on_the_deployment(cloud: Any, tmp_path: Any) -> None:
    """Identity management and the image service over PostgreSQL, as a
    member of a new project sees them (token, image upload, boot, policy)."""
    disk = tmp_path / "disk.raw"
    disk.write_bytes(b"\1" * 65536)
    project, user, assignments, image, shown = osc_batch(
        cloud,
        "project create --description Deploy dep-project -f json",
        "user create --password dep-pw --project dep-project dep-user -f json",
        "role add --project dep-project --user dep-user member",
        "role assignment list --project dep-project --names -f json",
        f"image create --file {disk} --disk-format raw --container-format bare "
        "--property os_distro=cirros --tag gold --public dep-image -f json",
        "image set --property os_version=1 dep-image",
        "image show dep-image -f json",
    )
    assert (project["name"], project["description"], project["enabled"]) == (
        "dep-project", "Deploy", True)
    assert user["default_project_id"] == project["id"]
    assert [(a["Role"], a["User"], a["Project"]) for a in assignments] == [
        ("member", "dep-user@Default", "dep-project@Default")]
    assert (image["status"], image["size"], image["visibility"]) == ("active", 65536, "public")
    assert shown["properties"]["os_version"] == "1" and shown["tags"] == ["gold"]
    assert shown["properties"]["os_distro"] == "cirros"

    # The member's own cloud entry: a token, the image, a server, and the admin APIs' 403.
    member = type("Member", (), {})()
    member.clouds_yaml = str(tmp_path / "member.yaml")
    with open(cloud.clouds_yaml) as src, open(member.clouds_yaml, "w") as dst:
        dst.write(src.read().replace("username: admin", "username: dep-user")
                  .replace(f"password: {cloud.password}", "password: dep-pw")
                  .replace("project_name: admin", "project_name: dep-project"))
    token, images, created = osc_batch(
        member, "token issue -f json", "image list -f json",
        "server create --image dep-image --flavor m1.nano dep-vm -f json")
    assert token["project_id"] == project["id"] and token["user_id"] == user["id"]
    assert "dep-image" in {i["Name"] for i in images}
    settled(cloud, created["id"], "ACTIVE")
    listed = osc_batch(member, "server list -f json")[0]
    assert [(s["Name"], s["Status"]) for s in listed] == [("dep-vm", "ACTIVE")]
    assert "403" in osc(member, "hypervisor", "list", ok=False)
    osc_batch(member, "server delete dep-vm")
    wait_for(lambda: cloud.conn.compute.find_server(created["id"], all_projects=True),
             lambda s: s is None, what="dep-vm deleted")
    osc_batch(cloud, "user delete dep-user", "project delete dep-project",
              "image delete dep-image")
    projects, users = osc_batch(cloud, "project list -f json", "user list -f json")
    assert "dep-project" not in {p["Name"] for p in projects}
    assert "dep-user" not in {u["Name"] for u in users}
