"""Quotas across processes: two API processes, a conductor, a scheduler and a
compute host over RabbitMQ and PostgreSQL; fifty concurrent creates split
between the two APIs never take the project past its quota."""
from __future__ import annotations

import os
import threading
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.functional import harness

pytestmark = pytest.mark.functional


@pytest.fixture(scope="module")
def two_apis(tmp_path_factory: Any) -> Any:
    tmp = str(tmp_path_factory.mktemp("quota-multi"))
    with harness.running_deployment(tmp, compute_hosts=("compute1",)) as dep:
        second = None
        try:
            port = harness.free_port()
            config = os.path.join(dep.workdir, "api2.conf")
            with open(dep.control_conf) as src, open(config, "w") as dst:
                dst.write(src.read().replace(f"port = {dep.port}", f"port = {port}"))
            second = harness.Process("api2", [harness.BIN, "api", "--config", config],
                                     os.path.join(dep.workdir, "api2.log"))
            second.start()
            url2 = f"http://127.0.0.1:{port}"
            harness.wait_until(lambda: harness.api_ready(url2), 60, what="the second API")
            yield dep, url2, dep.db_url
        finally:
            if second is not None:
                second.stop()


def test_fifty_creates_over_two_api_processes_stay_within_quota(two_apis: Any) -> None:
    dep, url2, db_url = two_apis
    conn = dep.connect()
    project = conn.current_project_id
    conn.compute.update_quota_set(project, instances=5, cores=1000, ram=1_000_000)
    image = conn.image.create_image(name="img", data=b"x" * 4096, disk_format="raw",
                                    container_format="bare")
    token = conn.auth_token
    urls = (dep.url, url2)
    barrier = threading.Barrier(50)
    results: list[Any] = [None] * 50

    def create(i: int) -> None:
        barrier.wait()
        try:
            resp = httpx.post(f"{urls[i % 2]}/compute/v2.1/servers", timeout=60,
                              headers={"X-Auth-Token": token},
                              json={"server": {"name": f"burst-{i}", "flavorRef": "42",
                                               "imageRef": image.id}})
            results[i] = (resp.status_code, resp.json())
        except Exception as exc:  # noqa: BLE001 - reported below
            results[i] = exc

    threads = [threading.Thread(target=create, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(isinstance(r, tuple) for r in results), results
    created = [body["server"]["id"] for code, body in results if code == 202]
    refused = [body for code, body in results if code == 403]
    assert len(created) == 5 and len(refused) == 45, results
    assert {body["forbidden"]["message"] for body in refused} == {
        "Quota exceeded for instances: Requested 1, but already used 5 of 5 instances"}
    for server_id in created:
        conn.compute.wait_for_server(conn.compute.get_server(server_id), status="ACTIVE",
                                     wait=60, interval=0.2)

    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as c:
            rows = set(c.scalars(sa.text("SELECT uuid FROM instances WHERE project_id = :p"),
                                 {"p": project}))
            actions = c.scalar(sa.text("SELECT count(*) FROM instance_actions "
                                       "WHERE project_id = :p"), {"p": project})
            consumers = list(c.scalars(sa.text("SELECT consumer_uuid FROM allocations")))
    finally:
        engine.dispose()
    assert rows == set(created) and actions == 5
    assert sorted(consumers) == sorted(created)
    used = conn.compute.get_quota_set(project, usage=True)
    assert (used.instances, used.usage["instances"]) == (5, 5)
    for server_id in created:
        conn.compute.delete_server(server_id)
    conn.compute.revert_quota_set(project)
    conn.close()
