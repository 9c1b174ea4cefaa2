"""A policy file ([oslo_policy] policy_file) changes what the defaults allow,
end to end with real tokens (its own cloud: the module-wide cloud of
test_policy_enforcement would share the in-process broker with it)."""
from __future__ import annotations

from tests.cloud import InProcessCloud
from tests.tenants import Tenants, cheap_hashing
from tests.unit.test_policy_enforcement import forbidden


def test_policy_file_lets_readers_create(tmp_path):
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(
        '"os_compute_api:servers:create": "rule:project_reader_or_admin"\n'
        '"os_compute_api:servers:delete": "rule:project_reader_or_admin"\n')
    with cheap_hashing():
        cloud = InProcessCloud(tmp_path, overrides={
            ("oslo_policy", "policy_file"): str(policy_file)})
        try:
            t = Tenants(cloud)
            image = t.image("admin", "cirros", visibility="public")
            server = t.boot("a-reader", "by-reader", image)
            assert server["status"] == "ACTIVE"
            # Rules the file leaves alone keep their defaults.
            forbidden(t.compute("a-reader", "POST", f"/servers/{server['id']}/action",
                                {"os-stop": None}), "os_compute_api:servers:stop")
            assert t.compute("a-reader", "DELETE",
                             f"/servers/{server['id']}").status_code == 204
        finally:
            cloud.close()
