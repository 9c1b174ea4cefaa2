"""Quotas (issue 3, item 3): Nova's os-quota-sets and enforcement, Glance's
image quotas.

* the pure checks of :mod:`stratus.quota` (Nova's messages, min/max counts);
* the engine, the per-project lock and concurrent updates on SQLite,
  PostgreSQL and MariaDB (the ``database`` fixture), and migration parity;
* the API through the in-process cloud (os-quota-sets, /limits, server
  create, server metadata, key pairs, images), and openstacksdk over HTTP;
* fifty concurrent ``POST /servers`` against a quota of five.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

import pytest
import sqlalchemy as sa

from stratus import conf as conf_mod
from stratus import exception, quota
from stratus.db import quotas as db_quotas
from stratus.db.models import Instance, Quota, QuotaLock
from stratus.db.session import Database
from stratus.quota import QuotaEngine
from stratus.utils import new_uuid
from tests import dbs

NOVA_DEFAULTS = {
    "instances": 10, "cores": 20, "ram": 51200, "metadata_items": 128, "injected_files": 5,
    "injected_file_content_bytes": 10240, "injected_file_path_bytes": 255, "key_pairs": 100,
    "server_groups": 10, "server_group_members": 10, "fixed_ips": -1, "floating_ips": -1,
    "security_groups": -1, "security_group_rules": -1,
}
LIMITS = {"instances": 10, "cores": 20, "ram": 51200}


def run_threads(count: int, target: Callable[[int], Any]) -> list[Any]:
    """Run ``target(i)`` on ``count`` threads released together; their results
    (or the exceptions they raised)."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = target(i)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


# -- the pure checks ---------------------------------------------------------------------

def usage(instances: int = 0, cores: int = 0, ram: int = 0) -> dict[str, int]:
    return {"instances": instances, "cores": cores, "ram": ram}


def test_instances_that_fit_are_all_created() -> None:
    assert quota.check_instances(LIMITS, usage(), 2, 512, 1, 10) == 10
    assert quota.check_instances({**LIMITS, "instances": -1, "cores": -1, "ram": -1},
                                 usage(500, 5000, 10 ** 7), 8, 8192, 1, 100) == 100


def test_too_many_cores_is_novas_message() -> None:
    with pytest.raises(quota.TooManyInstances) as err:
        quota.check_instances(LIMITS, usage(3, 18, 1024), 4, 512, 1, 1)
    assert err.value.code == 403
    assert str(err.value) == ("Quota exceeded for cores: Requested 4, but already used 18 "
                              "of 20 cores")


def test_several_resources_over_are_listed_sorted() -> None:
    with pytest.raises(quota.TooManyInstances) as err:
        quota.check_instances({"instances": 2, "cores": 4, "ram": 1024}, usage(2, 4, 1024),
                              1, 64, 1, 1)
    assert str(err.value) == ("Quota exceeded for cores, instances, ram: Requested 1, 1, 64, "
                              "but already used 4, 2, 1024 of 4, 2, 1024 cores, instances, ram")


def test_min_count_fits_so_as_many_as_fit_are_created() -> None:
    # 3 instances left; 4 cores each and 16 left: 4 would fit the cores.
    assert quota.check_instances(LIMITS, usage(7, 4, 0), 4, 512, 1, 5) == 3
    # cores bind first: 2 of 4 cores each.
    assert quota.check_instances(LIMITS, usage(0, 12, 0), 4, 512, 2, 5) == 2


def test_min_count_that_does_not_fit_names_the_range() -> None:
    with pytest.raises(quota.TooManyInstances) as err:
        quota.check_instances(LIMITS, usage(8, 8, 0), 1, 64, 3, 5)
    assert str(err.value) == ("Quota exceeded for instances: Requested 3-5, but already used "
                              "8 of 10 instances")


def test_unlimited_instances_still_count_cores() -> None:
    limits = {"instances": -1, "cores": 20, "ram": -1}
    assert quota.check_instances(limits, usage(50, 18, 0), 1, 64, 1, 5) == 2


def test_zero_quota_refuses_everything() -> None:
    with pytest.raises(quota.TooManyInstances, match="Requested 1, but already used 0 of 0 "
                                                     "instances"):
        quota.check_instances({**LIMITS, "instances": 0}, usage(), 1, 64, 1, 1)


def test_metadata_and_personality_limits() -> None:
    limits = QuotaEngine(conf_mod.new()).defaults()
    quota.check_metadata(limits, 128)
    with pytest.raises(quota.MetadataLimitExceeded) as err:
        quota.check_metadata(limits, 129)
    assert (err.value.code, str(err.value)) == (403, "Maximum number of metadata items "
                                                     "exceeds 128")
    quota.check_metadata({**limits, "metadata_items": -1}, 10_000)
    quota.check_injected_files(limits, [("/a", "x" * 10240)] * 5)
    with pytest.raises(quota.OnsetFileLimitExceeded, match="^Personality file limit "
                                                           "exceeded$"):
        quota.check_injected_files(limits, [("/a", "")] * 6)
    with pytest.raises(quota.OnsetFilePathLimitExceeded,
                       match="^Personality file path exceeds maximum 255$"):
        quota.check_injected_files(limits, [("/" * 256, "x" * 20000)])
    with pytest.raises(quota.OnsetFileContentLimitExceeded,
                       match="^Personality file content exceeds maximum 10240$"):
        quota.check_injected_files(limits, [("/a", "x" * 10241)])


def test_key_pair_and_image_limits() -> None:
    quota.check_key_pairs(100, 99)
    with pytest.raises(quota.KeypairLimitExceeded, match="^Quota exceeded, too many key "
                                                         "pairs.$"):
        quota.check_key_pairs(100, 100)
    quota.check_key_pairs(-1, 10 ** 6)
    limits = {"image_count_total": 2, "image_size_total": 1}
    quota.check_image_count("p1", limits, 1)
    with pytest.raises(quota.ImageLimitExceeded) as err:
        quota.check_image_count("p1", limits, 2)
    assert err.value.code == 413
    assert str(err.value).endswith("Project p1 is over a limit for [Resource "
                                   "image_count_total is over limit of 2 due to current "
                                   "usage 2 and delta 1]")
    assert str(err.value).startswith("The request returned a 413 Request Entity Too Large.")
    assert quota.image_bytes_left(limits, 1000) == quota.MIB - 1000
    quota.check_image_size("p1", limits, 1000, quota.MIB - 1000)
    with pytest.raises(quota.ImageLimitExceeded, match="image_size_total is over limit of 1 "
                                                       "due to current usage 0 and delta 1"):
        quota.check_image_size("p1", limits, 1000, quota.MIB - 999)
    assert quota.image_bytes_left({"image_size_total": -1}, 10 ** 12) is None


# -- the engine and the lock on every backend --------------------------------------------

@pytest.fixture
def engine() -> QuotaEngine:
    return QuotaEngine(conf_mod.new())


def add_instances(db: Database, project_id: str, count: int = 1, vcpus: int = 1,
                  memory_mb: int = 64, deleted: bool = False) -> None:
    with db.write() as s:
        for _ in range(count):
            s.add(Instance(uuid=new_uuid(), project_id=project_id, user_id="u", flavor={},
                           vcpus=vcpus, memory_mb=memory_mb, vm_state="active",
                           deleted=deleted))


def test_config_defaults_are_novas(engine: QuotaEngine) -> None:
    assert engine.defaults() == NOVA_DEFAULTS
    assert engine.defaults(quota.IMAGE_RESOURCES) == {"image_count_total": -1,
                                                      "image_size_total": -1}
    conf = conf_mod.new()
    conf.set("quota", "injected_file_path_length", 100)
    conf.set("quota", "image_count_total", 7)
    custom = QuotaEngine(conf)
    assert custom.defaults()["injected_file_path_bytes"] == 100
    assert custom.defaults(quota.IMAGE_RESOURCES)["image_count_total"] == 7


def test_limits_usage_update_and_revert(database: Database, engine: QuotaEngine) -> None:
    db = database
    add_instances(db, "p1", 2, vcpus=2, memory_mb=512)
    add_instances(db, "p1", 1, vcpus=8, deleted=True)
    add_instances(db, "p2", 1)
    engine.update(db, "p1", {"instances": 5, "cores": -1, "image_size_total": 10})
    engine.update(db, "p1", {"instances": 6})  # an update of an existing row
    with db.read() as s:
        assert engine.limits(s, "p1") == {**NOVA_DEFAULTS, "instances": 6, "cores": -1}
        assert engine.limits(s, "p1", quota.IMAGE_RESOURCES) == {
            "image_count_total": -1, "image_size_total": 10}
        assert engine.limits(s, "p2") == NOVA_DEFAULTS
        detail = engine.detail(s, "p1")
    assert detail["instances"] == {"in_use": 2, "limit": 6, "reserved": 0}
    assert detail["cores"] == {"in_use": 4, "limit": -1, "reserved": 0}
    assert detail["ram"] == {"in_use": 1024, "limit": 51200, "reserved": 0}
    assert detail["key_pairs"] == {"in_use": 0, "limit": 100, "reserved": 0}
    engine.revert(db, "p1")
    with db.read() as s:
        assert engine.limits(s, "p1") == NOVA_DEFAULTS
        assert db_quotas.limits_get(s, "p1") == {}


def test_update_below_usage_is_refused_unless_forced(database: Database,
                                                     engine: QuotaEngine) -> None:
    db = database
    add_instances(db, "p1", 3, vcpus=2)
    engine.update(db, "p1", {"cores": 10})
    with pytest.raises(exception.Invalid) as err:
        engine.update(db, "p1", {"cores": 8, "instances": 2})
    assert str(err.value) == ("Quota limit 2 for instances must be greater than or equal to "
                              "already used and reserved 3.")
    with db.read() as s:  # nothing changed, not even the valid cores
        assert db_quotas.limits_get(s, "p1") == {"cores": 10}
    engine.update(db, "p1", {"instances": 3, "cores": -1, "key_pairs": 0})  # = usage is fine
    engine.update(db, "p1", {"instances": 1}, force=True)
    with db.read() as s:
        assert db_quotas.limits_get(s, "p1") == {"cores": -1, "instances": 1, "key_pairs": 0}


def test_locked_count_then_insert_never_passes_the_limit(database: Database) -> None:
    """Twenty threads count a project's instances and add one if fewer than
    five: the lock makes exactly five of them do it, on every backend."""
    db = database

    def create(_i: int) -> bool:
        with db_quotas.locked_write(db, "p1") as s:
            if db_quotas.count_instances(s, "p1")["instances"] >= 5:
                return False
            s.add(Instance(uuid=new_uuid(), project_id="p1", flavor={}, vcpus=1,
                           memory_mb=64, vm_state="building"))
            return True

    results = run_threads(20, create)
    assert [r for r in results if not isinstance(r, bool)] == []
    assert results.count(True) == 5
    with db.read() as s:
        assert db_quotas.count_instances(s, "p1")["instances"] == 5
        assert s.scalar(sa.select(sa.func.count(QuotaLock.name))) == (0 if db.is_sqlite else 1)


def test_concurrent_admin_updates_leave_one_consistent_row(database: Database,
                                                           engine: QuotaEngine) -> None:
    """Admins setting the same new project's quotas at once: no duplicate-key
    error, one row per resource, and the values of one of the updates."""
    db = database
    written = [{"instances": 10 + i, "cores": 100 + i, "ram": 1000 + i} for i in range(12)]

    def update(i: int) -> None:
        engine.update(db, "fresh-project", written[i])
        engine.update(db, "fresh-project", written[(i + 1) % len(written)])

    assert [r for r in run_threads(len(written), update) if r is not None] == []
    with db.read() as s:
        rows = s.execute(sa.select(Quota.resource, sa.func.count(Quota.id))
                         .where(Quota.project_id == "fresh-project")
                         .group_by(Quota.resource)).all()
        final = db_quotas.limits_get(s, "fresh-project")
    assert sorted(rows) == [("cores", 1), ("instances", 1), ("ram", 1)]
    assert final in written  # the three values come from the same update


def test_concurrent_key_pair_creates_stay_within_the_limit(database: Database) -> None:
    """Ten key pairs of one user at once under a key_pairs limit of 3 (the
    user's lock): three are stored, seven refused."""
    from stratus.db import keypairs as db_keypairs

    def create(i: int) -> Any:
        return db_keypairs.keypair_create(database, user_id="u1", name=f"k{i}",
                                          public_key="pk", fingerprint="fp", max_per_user=3)

    results = run_threads(10, create)
    assert len([r for r in results if isinstance(r, quota.KeypairLimitExceeded)]) == 7
    assert len([r for r in results if isinstance(r, dict)]) == 3
    assert db_keypairs.keypair_count(database, "u1") == 3


# -- os-quota-sets and /limits through the in-process cloud ------------------------------

# tempest/lib/api_schema/response/compute/v2_1/quotas.py
UPDATE_KEYS = set(NOVA_DEFAULTS)
SHOW_KEYS = UPDATE_KEYS | {"id"}
DEMO_PASSWORD = "demo-secret"


class Tenant:
    """A member (and reader) of a project of its own in the in-process cloud."""

    def __init__(self, cloud: Any, name: str) -> None:
        from stratus.identity.bootstrap import bootstrap

        result = bootstrap(cloud.db, username=name, password=DEMO_PASSWORD,
                           project_name=name, roles=("member", "reader"))
        self.cloud = cloud
        self.project_id = result.project_id
        self.user_id = result.user_id
        self.token = cloud.token(name, DEMO_PASSWORD, name)

    def compute(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        return self.cloud.compute(method, path, body, token=self.token, **kw)


@pytest.fixture
def demo(cloud: Any) -> Tenant:
    return Tenant(cloud, "demo")


def public_image(cloud: Any) -> str:
    """An active public image every project may boot."""
    resp = cloud.request("POST", "/image/v2/images", {
        "name": "cirros", "disk_format": "raw", "container_format": "bare",
        "visibility": "public"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    image_id = resp.get_json()["id"]
    resp = cloud.request("PUT", f"/image/v2/images/{image_id}/file", raw=b"disk" * 256,
                         headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 204, resp.get_data(as_text=True)
    return str(image_id)


def fault(resp: Any, code: int) -> str:
    key = {400: "badRequest", 403: "forbidden", 404: "itemNotFound"}[code]
    assert resp.status_code == code, resp.get_data(as_text=True)
    body = resp.get_json()
    assert list(body) == [key] and body[key]["code"] == code
    return body[key]["message"]


def set_quota(cloud: Any, project_id: str, **values: Any) -> dict[str, Any]:
    resp = cloud.compute("PUT", f"/os-quota-sets/{project_id}", {"quota_set": values})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()["quota_set"]


def quota_of(cloud: Any, project_id: str) -> dict[str, Any]:
    resp = cloud.compute("GET", f"/os-quota-sets/{project_id}")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()["quota_set"]


def test_quota_sets_show_defaults_detail_update_delete(cloud: Any, demo: Tenant) -> None:
    pid = demo.project_id
    shown = quota_of(cloud, pid)
    assert set(shown) == SHOW_KEYS and shown == {"id": pid, **NOVA_DEFAULTS}
    defaults = cloud.compute("GET", f"/os-quota-sets/{pid}/defaults").get_json()
    assert defaults == {"quota_set": {"id": pid, **NOVA_DEFAULTS}}
    detail = cloud.compute("GET", f"/os-quota-sets/{pid}/detail").get_json()["quota_set"]
    assert set(detail) == SHOW_KEYS and detail["id"] == pid
    assert detail["cores"] == {"in_use": 0, "limit": 20, "reserved": 0}

    updated = set_quota(cloud, pid, instances=3, cores="7", ram=-1, force="True")
    assert set(updated) == UPDATE_KEYS  # Nova's update answer has no id
    assert (updated["instances"], updated["cores"], updated["ram"]) == (3, 7, -1)
    assert quota_of(cloud, pid) == {"id": pid, **NOVA_DEFAULTS, "instances": 3, "cores": 7,
                                    "ram": -1}
    assert cloud.compute("GET", f"/os-quota-sets/{pid}/defaults").get_json()[
        "quota_set"]["instances"] == 10

    resp = cloud.compute("DELETE", f"/os-quota-sets/{pid}")
    assert resp.status_code == 202 and resp.get_data() == b""
    assert quota_of(cloud, pid) == {"id": pid, **NOVA_DEFAULTS}


def test_quota_sets_policy(cloud: Any, demo: Tenant) -> None:
    pid = demo.project_id
    admin_project = cloud.project_id("admin")
    assert demo.compute("GET", f"/os-quota-sets/{pid}").get_json()["quota_set"]["id"] == pid
    assert demo.compute("GET", f"/os-quota-sets/{pid}/detail").status_code == 200
    assert demo.compute("GET", f"/os-quota-sets/{admin_project}/defaults").status_code == 200
    for method, path, rule in (
            ("GET", f"/os-quota-sets/{admin_project}", "show"),
            ("GET", f"/os-quota-sets/{admin_project}/detail", "detail"),
            ("PUT", f"/os-quota-sets/{pid}", "update"),
            ("DELETE", f"/os-quota-sets/{pid}", "delete")):
        body = {"quota_set": {"instances": 50}} if method == "PUT" else None
        assert fault(demo.compute(method, path, body), 403) == (
            f"Policy doesn't allow os_compute_api:os-quota-sets:{rule} to be performed.")
    assert quota_of(cloud, pid)["instances"] == 10
    # Nova asks Keystone about the project: an unknown one is a 400.
    assert fault(cloud.compute("GET", "/os-quota-sets/no-such-project"), 400) == (
        "Project ID no-such-project is not a valid project.")
    assert fault(cloud.compute("PUT", "/os-quota-sets/no-such-project",
                               {"quota_set": {"instances": 1}}), 400) == (
        "Project ID no-such-project is not a valid project.")


@pytest.mark.parametrize("body, message", [
    ({"quota_set": {"instances": -2}},
     "Invalid input for field/attribute instances. Value: -2. -2 is less than the minimum "
     "of -1"),
    ({"quota_set": {"instances": 1, "bogus": 1}},
     "Invalid input for field/attribute quota_set. Value: {'instances': 1, 'bogus': 1}. "
     "Additional properties are not allowed ('bogus' was unexpected)"),
    ({"quota_set": {"instances": "ten"}}, None),
    ({"quota_set": {"instances": 1.5}}, None),
    ({"quota_set": {"instances": True}}, None),
    ({"quota_set": {"instances": None}}, None),
    ({"quota_set": {"instances": 2147483648}}, None),
    ({"quota_set": {"cores": 5, "instances": "-5"}},
     "Quota limit -5 for instances must be -1 or greater."),
    ({"quota_set": {"instances": "99999999999"}},
     "Quota limit 99999999999 for instances must be less than or equal to 2147483647."),
    ({"quota_set": {"networks": 5}}, "The networks quota is disabled"),
    ({"quota_set": {"instances": 1, "force": "maybe"}}, None),
    ({"quota_set": {"image_count_total": 1}}, None),
    ({"quota_sets": {"instances": 1}}, None),
    ({}, None),
    ([], None),
])
def test_bad_quota_updates_are_400_and_change_nothing(cloud: Any, demo: Tenant, body: Any,
                                                      message: str | None) -> None:
    resp = cloud.compute("PUT", f"/os-quota-sets/{demo.project_id}", body)
    got = fault(resp, 400)
    if message is not None:
        assert got == message
    assert quota_of(cloud, demo.project_id) == {"id": demo.project_id, **NOVA_DEFAULTS}


def test_update_below_usage_needs_force(cloud: Any, demo: Tenant) -> None:
    image = public_image(cloud)
    for name in ("a", "b"):
        resp = demo.compute("POST", "/servers", {"server": {
            "name": name, "flavorRef": "3", "imageRef": image}})
        assert resp.status_code == 202, resp.get_data(as_text=True)
    pid = demo.project_id
    assert fault(cloud.compute("PUT", f"/os-quota-sets/{pid}",
                               {"quota_set": {"ram": 100000, "instances": 1}}), 400) == (
        "Quota limit 1 for instances must be greater than or equal to already used and "
        "reserved 2.")
    assert quota_of(cloud, pid)["ram"] == 51200
    assert fault(cloud.compute("PUT", f"/os-quota-sets/{pid}",
                               {"quota_set": {"cores": 3}}), 400) == (
        "Quota limit 3 for cores must be greater than or equal to already used and "
        "reserved 4.")
    assert set_quota(cloud, pid, instances=1, cores=0, force=True)["instances"] == 1
    detail = cloud.compute("GET", f"/os-quota-sets/{pid}/detail").get_json()["quota_set"]
    assert detail["instances"] == {"in_use": 2, "limit": 1, "reserved": 0}
    assert detail["cores"] == {"in_use": 4, "limit": 0, "reserved": 0}
    assert detail["ram"] == {"in_use": 8192, "limit": 51200, "reserved": 0}
    # user_id is accepted; quotas are per project here.
    assert set_quota(cloud, pid, instances=4)["instances"] == 4
    resp = cloud.compute("PUT", f"/os-quota-sets/{pid}?user_id={demo.user_id}",
                         {"quota_set": {"instances": 5}})
    assert resp.status_code == 200
    assert cloud.compute("GET", f"/os-quota-sets/{pid}?user_id={demo.user_id}").get_json()[
        "quota_set"]["instances"] == 5


def test_limits_show_the_projects_quota_and_usage(cloud: Any, demo: Tenant) -> None:
    set_quota(cloud, demo.project_id, instances=4, cores=9, key_pairs=3, metadata_items=7)
    resp = demo.compute("POST", "/servers", {"server": {
        "name": "vm", "flavorRef": "3", "imageRef": public_image(cloud)}})
    assert resp.status_code == 202
    absolute = demo.compute("GET", "/limits").get_json()["limits"]["absolute"]
    assert (absolute["maxTotalInstances"], absolute["maxTotalCores"],
            absolute["maxTotalRAMSize"], absolute["maxTotalKeypairs"],
            absolute["maxServerMeta"], absolute["maxImageMeta"]) == (4, 9, 51200, 3, 7, 7)
    assert (absolute["totalInstancesUsed"], absolute["totalCoresUsed"],
            absolute["totalRAMUsed"]) == (1, 2, 4096)
    other = cloud.compute("GET", f"/limits?tenant_id={demo.project_id}").get_json()
    assert other["limits"]["absolute"] == absolute
    mine = cloud.compute("GET", "/limits").get_json()["limits"]["absolute"]
    assert (mine["maxTotalInstances"], mine["totalInstancesUsed"]) == (10, 0)


# -- enforcement -------------------------------------------------------------------------

def create_server(tenant: Tenant, image: str, flavor: str = "1", **extra: Any) -> Any:
    return tenant.compute("POST", "/servers", {"server": dict(
        {"name": "vm", "flavorRef": flavor, "imageRef": image}, **extra)})


def instance_rows(cloud: Any, project_id: str) -> int:
    with cloud.db.read() as s:
        return s.scalar(sa.select(sa.func.count(Instance.id))
                        .where(Instance.project_id == project_id)) or 0


def test_server_create_over_cores_is_novas_403(cloud: Any, demo: Tenant) -> None:
    image = public_image(cloud)
    resp = create_server(demo, image, "5", min_count=2, max_count=2)  # 2 x 8 cores
    assert resp.status_code == 202
    assert create_server(demo, image, "3").status_code == 202  # 2 cores: 18 of 20
    assert fault(create_server(demo, image, "4"), 403) == (
        "Quota exceeded for cores: Requested 4, but already used 18 of 20 cores")
    assert instance_rows(cloud, demo.project_id) == 3
    with cloud.db.read() as s:
        from stratus.db.models import InstanceAction
        assert s.scalar(sa.select(sa.func.count(InstanceAction.id)).where(
            InstanceAction.project_id == demo.project_id)) == 3


def test_min_and_max_count_create_as_many_as_fit(cloud: Any, demo: Tenant) -> None:
    image = public_image(cloud)
    set_quota(cloud, demo.project_id, instances=4)
    assert create_server(demo, image).status_code == 202
    resp = create_server(demo, image, min_count=1, max_count=5, return_reservation_id=True)
    assert resp.status_code == 202
    reservation = resp.get_json()["reservation_id"]
    listed = demo.compute("GET", f"/servers?reservation_id={reservation}").get_json()
    assert sorted(s["name"] for s in listed["servers"]) == ["vm-1", "vm-2", "vm-3"]
    assert fault(create_server(demo, image, min_count=2, max_count=3), 403) == (
        "Quota exceeded for instances: Requested 2-3, but already used 4 of 4 instances")
    assert instance_rows(cloud, demo.project_id) == 4


def test_metadata_items_quota_on_create_and_on_metadata(cloud: Any, demo: Tenant) -> None:
    image = public_image(cloud)
    set_quota(cloud, demo.project_id, metadata_items=2)
    assert fault(create_server(demo, image, metadata={"a": "1", "b": "2", "c": "3"}),
                 403) == "Maximum number of metadata items exceeds 2"
    assert instance_rows(cloud, demo.project_id) == 0
    resp = create_server(demo, image, metadata={"a": "1"})
    assert resp.status_code == 202
    sid = resp.get_json()["server"]["id"]
    path = f"/servers/{sid}/metadata"
    msg = "Maximum number of metadata items exceeds 2"
    assert fault(demo.compute("POST", path, {"metadata": {"b": "2", "c": "3"}}), 403) == msg
    assert fault(demo.compute("PUT", path, {"metadata": {"x": "1", "y": "2", "z": "3"}}),
                 403) == msg
    assert demo.compute("PUT", f"{path}/b", {"meta": {"b": "2"}}).status_code == 200
    assert fault(demo.compute("PUT", f"{path}/c", {"meta": {"c": "3"}}), 403) == msg
    assert demo.compute("PUT", f"{path}/b", {"meta": {"b": "22"}}).status_code == 200
    assert demo.compute("GET", path).get_json() == {"metadata": {"a": "1", "b": "22"}}
    assert demo.compute("PUT", path, {"metadata": {"z": "9"}}).get_json() == {
        "metadata": {"z": "9"}}


def test_personality_quota(cloud: Any, demo: Tenant) -> None:
    import base64

    image = public_image(cloud)
    set_quota(cloud, demo.project_id, injected_files=1, injected_file_path_bytes=10,
              injected_file_content_bytes=8)
    blob = base64.b64encode(b"hi").decode()
    two = [{"path": "/a", "contents": blob}, {"path": "/b", "contents": blob}]
    assert fault(create_server(demo, image, personality=two), 403) == (
        "Personality file limit exceeded")
    assert fault(create_server(demo, image, personality=[
        {"path": "/etc/motd.txt", "contents": blob}]), 403) == (
        "Personality file path exceeds maximum 10")
    assert fault(create_server(demo, image, personality=[
        {"path": "/a", "contents": base64.b64encode(b"0123456789").decode()}]), 403) == (
        "Personality file content exceeds maximum 8")
    assert instance_rows(cloud, demo.project_id) == 0
    assert create_server(demo, image, personality=[{"path": "/a", "contents": blob}]
                         ).status_code == 202


def test_key_pairs_quota(cloud: Any, demo: Tenant) -> None:
    from stratus.api.compute.keypairs import generate_key_pair

    set_quota(cloud, demo.project_id, key_pairs=1)
    _private, public, _fp = generate_key_pair(1024)
    resp = demo.compute("POST", "/os-keypairs", {"keypair": {"name": "one",
                                                             "public_key": public}})
    assert resp.status_code == 200
    assert fault(demo.compute("POST", "/os-keypairs", {"keypair": {
        "name": "two", "public_key": public}}), 403) == "Quota exceeded, too many key pairs."
    listed = demo.compute("GET", "/os-keypairs").get_json()["keypairs"]
    assert [k["keypair"]["name"] for k in listed] == ["one"]
    set_quota(cloud, demo.project_id, key_pairs=-1)
    assert demo.compute("POST", "/os-keypairs", {"keypair": {
        "name": "two", "public_key": public}}).status_code == 200


def test_server_groups_and_members_quotas(cloud: Any, demo: Tenant) -> None:
    set_quota(cloud, demo.project_id, server_groups=1, server_group_members=2)

    def create_group(name: str) -> Any:
        return demo.compute("POST", "/os-server-groups", {"server_group": {
            "name": name, "policies": ["soft-anti-affinity"]}},
            headers={"OpenStack-API-Version": "compute 2.15"})

    resp = create_group("one")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    group_id = resp.get_json()["server_group"]["id"]
    assert fault(create_group("two"), 403) == "Quota exceeded, too many server groups."
    listed = demo.compute("GET", "/os-server-groups").get_json()["server_groups"]
    assert [g["name"] for g in listed] == ["one"]
    detail = demo.compute("GET", f"/os-quota-sets/{demo.project_id}/detail").get_json()
    assert detail["quota_set"]["server_groups"] == {"in_use": 1, "limit": 1, "reserved": 0}

    image = public_image(cloud)

    def boot(count: int) -> Any:
        return demo.compute("POST", "/servers", {
            "server": {"name": "member", "flavorRef": "1", "imageRef": image,
                       "min_count": count, "max_count": count},
            "os:scheduler_hints": {"group": group_id}})

    assert boot(2).status_code == 202
    before = demo.compute("GET", "/servers").get_json()["servers"]
    assert fault(boot(1), 403) == "Quota exceeded, too many servers in group"
    # The refused create left nothing: no server, no membership.
    assert demo.compute("GET", "/servers").get_json()["servers"] == before
    group = demo.compute("GET", f"/os-server-groups/{group_id}").get_json()["server_group"]
    assert sorted(group["members"]) == sorted(s["id"] for s in before)


# -- image quotas ------------------------------------------------------------------------

KIB = 1024


@pytest.fixture
def image_cloud(tmp_path: Any) -> Any:
    from tests.cloud import InProcessCloud

    c = InProcessCloud(tmp_path, overrides={("quota", "image_count_total"): 2,
                                            ("quota", "image_size_total"): 1})
    yield c
    c.close()


def glance_fault(resp: Any, code: int) -> str:
    assert resp.status_code == code, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["code"].startswith(str(code)) and set(body) == {"code", "title", "message"}
    return str(body["message"])


def test_image_count_and_size_quotas(image_cloud: Any) -> None:
    import os

    cloud = image_cloud
    demo = Tenant(cloud, "demo")

    def image_call(method: str, path: str, body: Any = None, **kw: Any) -> Any:
        return cloud.request(method, f"/image/v2{path}", body, token=demo.token, **kw)

    def create(name: str) -> Any:
        return image_call("POST", "/images", {"name": name, "disk_format": "raw",
                                              "container_format": "bare"})

    def upload(image_id: str, data: bytes, chunked: bool = False) -> Any:
        headers = {"Content-Type": "application/octet-stream"}
        if not chunked:
            return image_call("PUT", f"/images/{image_id}/file", raw=data, headers=headers)
        return cloud.client.open(
            f"/image/v2/images/{image_id}/file", method="PUT",
            input_stream=__import__("io").BytesIO(data),
            headers={**headers, "X-Auth-Token": demo.token, "Transfer-Encoding": "chunked"},
            environ_overrides={"wsgi.input_terminated": True})

    def status(image_id: str) -> str:
        return str(image_call("GET", f"/images/{image_id}").get_json()["status"])

    first, second = (create(n).get_json()["id"] for n in ("one", "two"))
    message = glance_fault(create("three"), 413)
    assert message == (
        "The request returned a 413 Request Entity Too Large. This generally means that "
        "rate limiting or a quota threshold was breached.\n\nThe response body:\nProject "
        f"{demo.project_id} is over a limit for [Resource image_count_total is over limit of "
        "2 due to current usage 2 and delta 1]")
    assert len(image_call("GET", "/images").get_json()["images"]) == 2

    assert upload(first, os.urandom(600 * KIB)).status_code == 204
    store = cloud.conf.image.store_dir
    assert sorted(os.listdir(store)) == [first]
    message = glance_fault(upload(second, os.urandom(600 * KIB)), 413)  # by Content-Length
    assert message.endswith(f"Project {demo.project_id} is over a limit for [Resource "
                            "image_size_total is over limit of 1 due to current usage 0 and "
                            "delta 1]")
    glance_fault(upload(second, os.urandom(600 * KIB), chunked=True), 413)  # mid-stream
    assert status(second) == "queued" and sorted(os.listdir(store)) == [first]
    assert upload(second, os.urandom(400 * KIB), chunked=True).status_code == 204
    assert status(second) == "active"

    # An administrator raises this project's own limits (no API yet: see NOTES).
    QuotaEngine(cloud.conf).update(cloud.db, demo.project_id,
                                   {"image_count_total": 3, "image_size_total": -1})
    third = create("three").get_json()["id"]
    assert upload(third, os.urandom(2 * 1024 * KIB)).status_code == 204
    assert glance_fault(create("four"), 413).endswith("image_count_total is over limit of 3 "
                                                     "due to current usage 3 and delta 1]")


def test_concurrent_uploads_cannot_pass_image_size_total(database: Database,
                                                         tmp_path: Any) -> None:
    """Two uploads of 600 KiB stream at once under a 1 MiB limit: the second to
    finish is refused when it would become active, and leaves no data."""
    import os

    from stratus.context import RequestContext
    from stratus.image.service import ImageService
    from stratus.image.store import FileStore

    conf = conf_mod.new()
    conf.set("quota", "image_size_total", 1)
    store = FileStore(str(tmp_path / "images"))
    service = ImageService(database, store, quotas=QuotaEngine(conf))
    ctx = RequestContext(user_id="u1", project_id="p1", roles=["member"])
    ids = [service.create(ctx, {"name": f"i{i}", "disk_format": "raw",
                                "container_format": "bare"})["id"] for i in range(2)]
    halfway = threading.Barrier(2)

    def chunks() -> Any:
        yield os.urandom(300 * KIB)
        halfway.wait(30)
        yield os.urandom(300 * KIB)

    results = run_threads(2, lambda i: service.upload(ctx, ids[i], chunks()))
    refused = [r for r in results if isinstance(r, quota.ImageLimitExceeded)]
    done = [r for r in results if isinstance(r, dict)]
    assert len(refused) == 1 and len(done) == 1, results
    winner = done[0]["id"]
    loser = ids[1] if winner == ids[0] else ids[0]
    assert service.show(ctx, loser)["status"] == "queued"
    assert service.show(ctx, winner)["size"] == 600 * KIB
    assert os.listdir(store.store_dir) == [winner]


# -- over HTTP: openstacksdk, and fifty concurrent creates -----------------------------

class Served:
    """An in-process cloud behind a real HTTP server (waitress) on a free port."""

    def __init__(self, tmp_path: Any, db_url: str | None = None) -> None:
        import socket

        from waitress.server import create_server

        from tests.cloud import InProcessCloud

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.cloud = InProcessCloud(tmp_path, db_url=db_url,
                                    overrides={("api", "port"): self.port})
        self.server = create_server(self.cloud.app, host="127.0.0.1", port=self.port,
                                    threads=16, asyncore_loop_timeout=0.05)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()

    def connect(self, username: str = "admin", password: str | None = None,
                project: str = "admin") -> Any:
        import openstack

        from tests.cloud import ADMIN_PASSWORD

        return openstack.connect(auth_url=f"{self.url}/identity", username=username,
                                 password=password or ADMIN_PASSWORD, project_name=project,
                                 user_domain_name="Default", project_domain_name="Default",
                                 region_name="RegionOne")

    def close(self) -> None:
        from waitress import wasyncore

        # Close every socket from the server's own loop thread, which then ends.
        self.server.trigger.pull_trigger(lambda: wasyncore.close_all(self.server._map))
        self.thread.join(timeout=5)
        self.server.task_dispatcher.shutdown()
        self.cloud.close()


def test_openstacksdk_quota_sets_and_limits(tmp_path: Any) -> None:
    import openstack.exceptions

    served = Served(tmp_path)
    conn = served.connect()
    try:
        demo = Tenant(served.cloud, "demo")
        qs = conn.compute.get_quota_set(demo.project_id)
        assert (qs.instances, qs.cores, qs.ram, qs.key_pairs) == (10, 20, 51200, 100)
        assert conn.compute.get_quota_set_defaults(demo.project_id).instances == 10
        updated = conn.compute.update_quota_set(demo.project_id, instances=1, cores=30)
        assert (updated.instances, updated.cores) == (1, 30)
        assert conn.compute.get_quota_set(demo.project_id).instances == 1

        image = public_image(served.cloud)
        mine = served.connect("demo", DEMO_PASSWORD, "demo")
        try:
            server = mine.compute.create_server(name="sdk-vm", flavor_id="42", image_id=image,
                                                networks="none")
            mine.compute.wait_for_server(server, wait=30)
            with pytest.raises(openstack.exceptions.ForbiddenException) as err:
                mine.compute.create_server(name="too-many", flavor_id="42", image_id=image,
                                           networks="none")
            assert ("Quota exceeded for instances: Requested 1, but already used 1 of 1 "
                    "instances") in str(err.value)
            limits = mine.compute.get_limits()
            assert (limits.absolute.instances, limits.absolute.instances_used,
                    limits.absolute.total_cores, limits.absolute.total_cores_used,
                    limits.absolute.total_ram_used) == (1, 1, 30, 1, 128)
        finally:
            mine.close()

        used = conn.compute.get_quota_set(demo.project_id, usage=True)
        assert used.usage["instances"] == 1 and used.usage["ram"] == 128
        assert used.reservation["instances"] == 0 and used.instances == 1
        conn.compute.revert_quota_set(demo.project_id)
        assert conn.compute.get_quota_set(demo.project_id).instances == 10
    finally:
        conn.close()
        served.close()


@pytest.mark.parametrize("backend", dbs.BACKENDS)
def test_fifty_concurrent_creates_never_pass_the_quota(backend: str, tmp_path: Any) -> None:
    """Quota of 5 instances, 50 POST /servers at once over HTTP: exactly 5 are
    created (and built), 45 get Nova's 403, and nothing else is left in the
    database: no instance row, no instance action, no allocation."""
    import requests

    from stratus.db.models import Allocation, InstanceAction

    if not dbs.available(backend):
        pytest.skip(f"{backend} is not reachable")
    with dbs.scratch_database(backend, str(tmp_path)) as url:
        served = Served(tmp_path, db_url=url)
        try:
            cloud = served.cloud
            demo = Tenant(cloud, "demo")
            set_quota(cloud, demo.project_id, instances=5, cores=1000, ram=1_000_000)
            image = public_image(cloud)

            def create(i: int) -> tuple[int, Any]:
                resp = requests.post(
                    f"{served.url}/compute/v2.1/servers", timeout=60,
                    headers={"X-Auth-Token": demo.token},
                    json={"server": {"name": f"burst-{i}", "flavorRef": "42",
                                     "imageRef": image}})
                return resp.status_code, resp.json()

            results = run_threads(50, create)
            assert [r for r in results if not isinstance(r, tuple)] == []
            created = [body["server"]["id"] for code, body in results if code == 202]
            refused = [body for code, body in results if code == 403]
            assert len(created) == 5 and len(refused) == 45, results
            assert all(body == {"forbidden": {"code": 403, "message": (
                "Quota exceeded for instances: Requested 1, but already used 5 of 5 "
                "instances")}} for body in refused)
            for server_id in created:
                cloud.wait_for(server_id, "ACTIVE", timeout=60)
            with cloud.db.read() as s:
                rows = set(s.scalars(sa.select(Instance.uuid).where(
                    Instance.project_id == demo.project_id)))
                actions = s.scalar(sa.select(sa.func.count(InstanceAction.id)).where(
                    InstanceAction.project_id == demo.project_id))
                consumers = list(s.scalars(sa.select(Allocation.consumer_uuid)))
            assert rows == set(created)
            assert actions == 5
            assert sorted(consumers) == sorted(created)
            detail = cloud.compute("GET", f"/os-quota-sets/{demo.project_id}/detail")
            assert detail.get_json()["quota_set"]["instances"] == {
                "in_use": 5, "limit": 5, "reserved": 0}
        finally:
            served.close()
