"""Real Stratus deployments for functional tests: real OS processes.

:class:`AllInOne` runs ``stratus all-in-one``; :class:`Deployment` runs the
api, conductor, scheduler and compute services as separate processes over
RabbitMQ (a throw-away vhost) and a database (a throw-away PostgreSQL or
MariaDB database). Both hand out an openstacksdk connection.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from typing import Any, Iterator

import httpx

BIN = os.path.join(os.path.dirname(sys.executable), "stratus")
PASSWORD = "functional-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Any, timeout: float = 30.0, interval: float = 0.05,
               what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def api_ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/compute/", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def connect(url: str, password: str, username: str = "admin", project: str = "admin") -> Any:
    import openstack

    return openstack.connect(auth_url=f"{url}/identity", username=username, password=password,
                             project_name=project, user_domain_name="Default",
                             project_domain_name="Default", region_name="RegionOne",
                             identity_api_version="3")


CLOUDS_YAML = """\
clouds:
  stratus:
    auth:
      auth_url: {url}/identity
      username: admin
      password: {password}
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    identity_api_version: 3
    interface: public
"""


class Process:
    def __init__(self, name: str, args: list[str], log_path: str,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.args = args
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT,
                                     env=self.env, start_new_session=True)
        log.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()  # type: ignore[union-attr]
            self.proc.wait(10)  # type: ignore[union-attr]

    def stop(self, timeout: float = 20.0) -> int | None:
        if not self.alive():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        try:
            return self.proc.wait(timeout)  # type: ignore[union-attr]
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()


class AllInOne:
    """``stratus all-in-one`` on a free port with its own state directory."""

    def __init__(self, state_dir: str, extra_args: list[str] | None = None,
                 hypervisor: str = "fake") -> None:
        self.state_dir = state_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        os.makedirs(state_dir, exist_ok=True)
        self.process = Process("all-in-one", [BIN, "all-in-one", "--state-dir", state_dir,
                                              "--port", str(self.port),
                                              "--hypervisor", hypervisor] + (extra_args or []),
                               os.path.join(state_dir, "stdout.log"))

    @property
    def clouds_yaml(self) -> str:
        return os.path.join(self.state_dir, "clouds.yaml")

    @property
    def password(self) -> str:
        with open(self.clouds_yaml, encoding="utf-8") as f:
            for line in f:
                if line.strip().startswith("password:"):
                    return line.split(":", 1)[1].strip()
        raise RuntimeError("no password in clouds.yaml")

    def start(self, timeout: float = 60.0) -> None:
        self.process.start()
        try:  # the banner comes once every service started (the API serves just before)
            wait_until(lambda: (api_ready(self.url) and "Stratus is running" in self.process.log())
                       or not self.process.alive(), timeout, what="the all-in-one API")
        finally:
            if not self.process.alive():
                raise RuntimeError("all-in-one died:\n" + self.process.log())

    def stop(self) -> int | None:
        return self.process.stop()

    def connect(self) -> Any:
        return connect(self.url, self.password)


def ini(sections: dict[str, dict[str, Any]]) -> str:
    """An INI file's text from {section: {option: value}}."""
    return "".join(f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in opts.items())
                   for name, opts in sections.items())


def merged(*layers: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for section, opts in layer.items():
            out.setdefault(section, {}).update(opts)
    return out


# control_options for tests about capacity, not quotas: more servers than
# Nova's default quota (10 instances, 20 cores) allows.
NO_INSTANCE_QUOTAS: dict[str, dict[str, Any]] = {
    "quota": {"instances": -1, "cores": -1, "ram": -1}}


class Deployment:
    """api + conductor + ``schedulers`` schedulers + N compute hosts, each its
    own process. ``compute_options`` ({section: {option: value}}) go into every
    compute host's configuration (e.g. the fake driver's memory), then
    ``host_options[host]`` into that host's (e.g. its own instances_path).
    ``fake_hosts`` adds one more compute process, "fleet", running that many
    fake hosts (``stratus compute --fake-hosts N``, hosts fleet-00001...).
    ``hypervisor="libvirt"``: the compute hosts run libvirt guests under QEMU
    TCG, fetching images over HTTP as ``[service_user]`` (they have no
    database credentials), and the work directory is readable by QEMU."""

    def __init__(self, workdir: str, transport_url: str, db_url: str,
                 compute_hosts: tuple[str, ...] = ("compute1", "compute2"),
                 fake_delay: float = 0.0, defaults: str = "", schedulers: int = 1,
                 compute_options: dict[str, dict[str, Any]] | None = None,
                 control_options: dict[str, dict[str, Any]] | None = None,
                 fake_hosts: int = 0, report_interval: float = 1,
                 service_down_time: float = 5, hypervisor: str = "fake",
                 host_options: dict[str, dict[str, dict[str, Any]]] | None = None) -> None:
        self.workdir = workdir
        self.db_url = db_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.compute_hosts = compute_hosts
        os.makedirs(workdir, exist_ok=True)
        driver_options: dict[str, dict[str, Any]] = {}
        if hypervisor == "libvirt":
            os.chmod(workdir, 0o755)  # QEMU runs as libvirt-qemu and must reach the disks
            driver_options = {"compute": {"driver": "libvirt"},
                              "libvirt": {"virt_type": "qemu"},
                              "service_user": {"auth_url": f"{self.url}/identity",
                                               "password": PASSWORD}}
        common = (f"[DEFAULT]\ntransport_url = {transport_url}\nstate_path = {workdir}\n"
                  f"report_interval = {report_interval}\n"
                  f"service_down_time = {service_down_time}\n"
                  f"rpc_response_timeout = 30\n{defaults}")
        self.control_conf = os.path.join(workdir, "control.conf")
        control = merged({"database": {"connection": db_url}, "api": {"port": self.port}},
                         control_options or {})
        with open(self.control_conf, "w") as f:
            f.write(common + "host = controller\n" + ini(control))
        self.transport_url = transport_url
        self.scheduler_confs = [self.control_conf]
        self.scheduler_hosts = ["controller"]
        for index in range(2, schedulers + 1):  # each scheduler its own service host
            path = os.path.join(workdir, f"scheduler{index}.conf")
            with open(path, "w") as f:
                f.write(common + f"host = scheduler{index}\n" + ini(control))
            self.scheduler_confs.append(path)
            self.scheduler_hosts.append(f"scheduler{index}")
        self.fake_hosts = fake_hosts
        self.compute_confs = {}
        for host in compute_hosts + (("fleet",) if fake_hosts else ()):
            path = os.path.join(workdir, f"{host}.conf")
            sections = merged({"compute": {"resource_update_interval": 2},
                               "fake": {"delay": fake_delay}}, driver_options,
                              compute_options or {}, (host_options or {}).get(host, {}))
            with open(path, "w") as f:  # no [database]: compute hosts get no credentials
                f.write(common + f"host = {host}\n" + ini(sections))
            self.compute_confs[host] = path
        self.processes: dict[str, Process] = {}

    @property
    def compute_count(self) -> int:
        return len(self.compute_hosts) + self.fake_hosts

    def _process(self, name: str, service: str, config: str,
                 extra: tuple[str, ...] = ()) -> Process:
        proc = Process(name, [BIN, service, "--config", config, *extra],
                       os.path.join(self.workdir, f"{name}.log"))
        self.processes[name] = proc
        return proc

    def start(self) -> None:
        for args in (["db", "sync"], ["bootstrap", "--password", PASSWORD]):
            subprocess.run([BIN, *args, "--config", self.control_conf], check=True,
                           capture_output=True)
        self._process("conductor", "conductor", self.control_conf).start()
        for index, path in enumerate(self.scheduler_confs, start=1):
            name = "scheduler" if index == 1 else f"scheduler{index}"
            self._process(name, "scheduler", path).start()
        self._process("api", "api", self.control_conf).start()
        for host, path in self.compute_confs.items():
            extra = ("--fake-hosts", str(self.fake_hosts)) if host == "fleet" else ()
            self._process(host, "compute", path, extra).start()
        wait_until(lambda: api_ready(self.url), 60, what="the API")
        conn = self.connect()
        wait_until(lambda: len([s for s in conn.compute.services()
                                if s.binary == "stratus-compute" and s.state == "up"])
                   == self.compute_count, 120 + self.compute_count / 50, interval=0.5,
                   what="compute services up")
        wait_until(lambda: len(list(conn.compute.hypervisors())) == self.compute_count,
                   60, interval=0.5, what="compute nodes reported")
        self.wait_for_schedulers()

    def wait_for_schedulers(self, timeout: float = 30.0) -> None:
        """Until every scheduler's cached host states hold every compute node
        (a new node joins at its next refresh, up to ``host_state_max_age``
        after it reported)."""
        from stratus import rpc
        from stratus.context import get_admin_context
        from stratus.scheduler.rpcapi import SchedulerAPI

        transport = rpc.get_transport(self.transport_url)
        try:
            api = SchedulerAPI(transport, timeout=30)
            for host in self.scheduler_hosts:
                wait_until(lambda: api.scheduler_stats(get_admin_context(), server=host)[
                    "hosts"] >= self.compute_count, timeout, interval=0.2,
                    what=f"scheduler {host} to see every compute node")
        finally:
            transport.cleanup()

    @property
    def password(self) -> str:
        return PASSWORD

    @property
    def clouds_yaml(self) -> str:
        """A clouds.yaml naming this deployment ``stratus``, as the all-in-one's."""
        path = os.path.join(self.workdir, "clouds.yaml")
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(CLOUDS_YAML.format(url=self.url, password=PASSWORD))
        return path

    def restart(self, name: str) -> None:
        proc = self.processes[name]
        proc.stop()
        proc.start()

    def stop(self) -> None:
        for proc in reversed(list(self.processes.values())):
            proc.stop()

    def connect(self) -> Any:
        return connect(self.url, PASSWORD)


class RabbitVhost:
    """A throw-away RabbitMQ vhost, so test runs never share queues."""

    def __init__(self) -> None:
        self.name = "stratus-test-" + uuid.uuid4().hex[:8]

    def __enter__(self) -> str:
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", self.name], check=True,
                       capture_output=True)
        subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", self.name, "guest",
                        ".*", ".*", ".*"], check=True, capture_output=True)
        return f"rabbit://guest:guest@127.0.0.1:5672/{self.name}"

    def __exit__(self, *exc: Any) -> None:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", self.name], capture_output=True)


@contextlib.contextmanager
def running_deployment(tmp: str, backend: str = "postgresql", skip_unavailable: bool = False,
                       **options: Any) -> Iterator[Deployment]:
    """A started :class:`Deployment` in ``<tmp>/deploy`` (``options`` are its
    own) on a throw-away RabbitMQ vhost and ``backend`` database, stopped and
    dropped afterwards. Without RabbitMQ or the database the test fails, or
    skips with ``skip_unavailable``."""
    import pytest

    from tests import dbs

    missing = pytest.skip if skip_unavailable else pytest.fail
    if not dbs.port_open(5672):
        missing("RabbitMQ is not running on 127.0.0.1:5672 (scripts/test-services)")
    if not dbs.available(backend):
        missing(f"{backend} is not reachable (scripts/test-services)")
    with RabbitVhost() as transport_url, dbs.scratch_database(backend, tmp) as db_url:
        dep = Deployment(os.path.join(tmp, "deploy"), transport_url, db_url, **options)
        try:
            dep.start()
            yield dep
        finally:
            dep.stop()
