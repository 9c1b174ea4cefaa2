"""The ``stratus`` command: every service, the all-in-one, and admin tasks."""
from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import sys
import threading
import time
from typing import Any, Callable

from stratus import conf as conf_mod
from stratus import exception, log

LOG = logging.getLogger("stratus")


def _load_conf(path: str | None, overrides: dict[tuple[str, str], Any] | None = None) -> Any:
    try:
        return conf_mod.load(path, overrides)
    except exception.ConfigError as exc:
        sys.exit(f"stratus: {exc}")


def _wait_for_signal() -> None:
    """Block until SIGTERM or SIGINT (Ctrl-C)."""
    stop = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        LOG.info("Received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    while not stop.wait(3600):
        pass


def _run_until_signal(starters: list[tuple[str, Any]], cleanup: Callable[[], None]) -> None:
    started = []
    try:
        for _name, service in starters:
            service.start()
            started.append(service)
        _wait_for_signal()
    finally:
        for service in reversed(started):
            try:
                service.stop()
            except Exception:  # noqa: BLE001
                LOG.exception("Error stopping %s", service)
        cleanup()


# -- single services -------------------------------------------------------------

def cmd_service(args: argparse.Namespace) -> None:
    from stratus import launch, rpc

    overrides = {}
    if getattr(args, "fake_hosts", None) is not None:
        overrides[("fake", "hosts")] = args.fake_hosts
    conf = _load_conf(args.config, overrides)
    log.setup(conf.DEFAULT.debug, conf.DEFAULT.log_file)
    transport = rpc.get_transport(conf.DEFAULT.transport_url)
    db = None
    if args.command == "compute":
        service = launch.make_compute(conf, transport)
    else:
        db = launch.make_database(conf)
        if args.command == "conductor":
            service = launch.make_conductor(conf, transport, db)
        elif args.command == "scheduler":
            service = launch.make_scheduler(conf, transport, db)
        else:
            from stratus.api.server import ApiService
            service = ApiService(conf, db, transport)

    def cleanup() -> None:
        transport.cleanup()
        if db is not None:
            db.dispose()

    _run_until_signal([(args.command, service)], cleanup)


# -- admin tasks -------------------------------------------------------------------

def cmd_db_sync(args: argparse.Namespace) -> None:
    from stratus.db import migration

    conf = _load_conf(args.config)
    log.setup(conf.DEFAULT.debug, conf.DEFAULT.log_file)
    migration.upgrade(conf.database.connection)
    print(f"Database at revision {migration.current_revision(conf.database.connection)}")


def bootstrap(conf: Any, password: str, username: str = "admin",
              project: str = "admin") -> None:
    from stratus import launch
    from stratus.db import flavors as db_flavors
    from stratus.identity import service as identity_service

    db = launch.make_database(conf)
    try:
        identity_service.bootstrap(db, username=username, password=password,
                                   project_name=project)
        db_flavors.ensure_default_flavors(db)
    finally:
        db.dispose()


def cmd_bootstrap(args: argparse.Namespace) -> None:
    conf = _load_conf(args.config)
    log.setup(conf.DEFAULT.debug, conf.DEFAULT.log_file)
    bootstrap(conf, args.password, args.username, args.project)
    print(f"Bootstrapped user {args.username} in project {args.project}")


def cmd_policy_list(args: argparse.Namespace) -> None:
    from stratus import policy

    conf = _load_conf(args.config)
    try:
        enforcer = policy.Enforcer(policy_file=conf.oslo_policy.policy_file)
    except exception.ConfigError as exc:
        sys.exit(f"stratus: {exc}")
    for name, check_str in sorted(enforcer.effective().items()):
        marker = "  # overridden" if name in enforcer.overrides else ""
        print(f'"{name}": "{check_str}"{marker}')


def cmd_config_sample(_args: argparse.Namespace) -> None:
    sys.stdout.write(conf_mod.sample_text())


# -- all-in-one ----------------------------------------------------------------------

CLOUDS_YAML = """\
clouds:
  stratus:
    auth:
      auth_url: {auth_url}
      username: admin
      password: {password}
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: {region}
    identity_api_version: 3
    interface: public
"""


def _read_password(clouds_file: str) -> str | None:
    if not os.path.exists(clouds_file):
        return None
    with open(clouds_file, encoding="utf-8") as f:
        for line in f:
            if line.strip().startswith("password:"):
                return line.split(":", 1)[1].strip()
    return None


def libvirt_reachable(uri: str) -> tuple[bool, str]:
    """Whether libvirt-python is installed and ``uri`` answers (and why not)."""
    try:
        import libvirt
    except ImportError:
        return False, "libvirt-python is not installed (pip install '.[libvirt]')"
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as exc:
        return False, f"libvirtd not reachable at {uri}: {exc.get_error_message()}"
    try:
        return True, f"{uri}, QEMU {conn.getVersion() // 1000000}.{conn.getVersion() // 1000 % 1000}"
    finally:
        conn.close()


def choose_hypervisor(conf: Any, choice: str) -> str:
    """Set ``[compute] driver`` for the all-in-one and say which, and why.

    A driver set in the config file wins; otherwise ``--hypervisor``:
    ``fake``, ``libvirt``, or ``auto`` (libvirt when libvirtd answers, else
    fake). Without a ``[libvirt] virt_type`` in the file, the all-in-one uses
    ``qemu`` (TCG), which works everywhere, nested VMs included.
    """
    if ("compute", "driver") in conf.from_file:
        driver = conf.compute.driver
        why = "[compute] driver in the config file"
    elif choice in ("fake", "libvirt"):
        driver, why = choice, f"--hypervisor {choice}"
    else:
        ok, detail = libvirt_reachable(conf.libvirt.connection_uri)
        driver, why = ("libvirt", detail) if ok else ("fake", detail)
    conf.compute.driver = driver
    if driver == "libvirt":
        if ("libvirt", "virt_type") not in conf.from_file:
            conf.libvirt.virt_type = "qemu"
        return (f"libvirt ({why}; virt_type={conf.libvirt.virt_type}, "
                f"instances in {conf.libvirt.instances_path})")
    return f"{driver} ({why})"


def cmd_all_in_one(args: argparse.Namespace) -> None:
    from stratus import launch, rpc
    from stratus.api.server import ApiService
    from stratus.db import migration

    started = time.monotonic()
    overrides: dict[tuple[str, str], Any] = {
        ("DEFAULT", "state_path"): os.path.abspath(args.state_dir),
        ("api", "port"): args.port}
    if args.listen:
        overrides[("api", "listen")] = args.listen
    conf = _load_conf(args.config, overrides)
    state = conf.DEFAULT.state_path
    os.makedirs(state, exist_ok=True)
    log.setup(conf.DEFAULT.debug, conf.DEFAULT.log_file or os.path.join(state, "stratus.log"))

    migration.upgrade(conf.database.connection)
    clouds_file = os.path.join(state, "clouds.yaml")
    password = _read_password(clouds_file)
    if password is None:
        password = secrets.token_urlsafe(16)
        bootstrap(conf, password)
    with open(clouds_file, "w", encoding="utf-8") as f:
        os.chmod(clouds_file, 0o600)
        f.write(CLOUDS_YAML.format(auth_url=f"{conf.api.public_url}/identity",
                                   password=password, region=conf.api.region))
    if ("service_user", "password") not in conf.from_file:
        # The compute fetches images over HTTP as the admin of this cloud.
        conf.service_user.password = password
    hypervisor = choose_hypervisor(conf, args.hypervisor)
    LOG.info("Hypervisor: %s", hypervisor)

    transport = rpc.get_transport(conf.DEFAULT.transport_url)
    db = launch.make_database(conf)
    api = ApiService(conf, db, transport)
    services = [("conductor", launch.make_conductor(conf, transport, db)),
                ("scheduler", launch.make_scheduler(conf, transport, db)),
                ("compute", launch.make_compute(conf, transport)),
                ("api", api)]

    class _Banner:
        def start(self) -> None:
            print(f"Stratus is running at {conf.api.public_url} "
                  f"(started in {time.monotonic() - started:.2f} s; logs in "
                  f"{conf.DEFAULT.log_file or os.path.join(state, 'stratus.log')})\n"
                  f"Hypervisor: {hypervisor}\n"
                  f"Use it with:\n"
                  f"  export OS_CLIENT_CONFIG_FILE={clouds_file}\n"
                  f"  export OS_CLOUD=stratus\n"
                  f"  openstack server list\n"
                  f"Stop it with Ctrl-C.", flush=True)

        def stop(self) -> None:
            pass

    def cleanup() -> None:
        transport.cleanup()
        db.dispose()

    _run_until_signal(services + [("banner", _Banner())], cleanup)


# -- argument parsing ------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stratus", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    aio = sub.add_parser("all-in-one", help="every service in one process, embedded defaults")
    aio.add_argument("--state-dir", default="./.stratus")
    aio.add_argument("--port", type=int, default=8774)
    aio.add_argument("--listen", default=None, help="address to listen on (default 127.0.0.1)")
    aio.add_argument("--config", default=None, help="optional config file")
    aio.add_argument("--hypervisor", choices=("auto", "fake", "libvirt"), default="auto",
                     help="virt driver: libvirt when libvirtd is reachable (auto, the "
                          "default), or as named; [compute] driver in --config wins")
    aio.set_defaults(func=cmd_all_in_one)

    for name in ("api", "conductor", "scheduler", "compute"):
        p = sub.add_parser(name, help=f"run stratus-{name}")
        p.add_argument("--config", required=True)
        if name == "compute":
            p.add_argument("--fake-hosts", type=int, default=None, metavar="N",
                           help="run N fake compute hosts in this process ([fake] hosts)")
        p.set_defaults(func=cmd_service)

    db = sub.add_parser("db", help="database tasks")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    sync = db_sub.add_parser("sync", help="upgrade the database schema to the latest")
    sync.add_argument("--config", required=True)
    sync.set_defaults(func=cmd_db_sync)

    boot = sub.add_parser("bootstrap", help="create the admin user, project and roles")
    boot.add_argument("--config", required=True)
    boot.add_argument("--password", required=True)
    boot.add_argument("--username", default="admin")
    boot.add_argument("--project", default="admin")
    boot.set_defaults(func=cmd_bootstrap)

    pol = sub.add_parser("policy", help="policy tasks")
    pol_sub = pol.add_subparsers(dest="policy_command", required=True)
    plist = pol_sub.add_parser("list", help="print the effective policy rules")
    plist.add_argument("--config", default=None)
    plist.set_defaults(func=cmd_policy_list)

    cfg = sub.add_parser("config", help="configuration tasks")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True)
    smp = cfg_sub.add_parser("sample", help="print a sample configuration file")
    smp.set_defaults(func=cmd_config_sample)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
