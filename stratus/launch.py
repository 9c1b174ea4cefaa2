"""Building each Stratus service from the configuration.

``stratus conductor|scheduler|compute|api --config FILE`` and the
all-in-one use the same factories, so the embedded cloud runs exactly the
code a multi-process deployment runs; only the transport (``memory://``) and
database (SQLite) differ.
"""
from __future__ import annotations

import logging
from typing import Any

from stratus import exception, rpc
from stratus.conductor.manager import ConductorManager
from stratus.conductor.rpcapi import TOPIC as CONDUCTOR_TOPIC, ConductorAPI
from stratus.compute import manager as compute_manager
from stratus.compute.virt import load_driver
from stratus.context import get_admin_context
from stratus.db import services as db_services
from stratus.db.session import Database
from stratus.scheduler.manager import SchedulerManager
from stratus.scheduler.rpcapi import TOPIC as SCHEDULER_TOPIC
from stratus.service import RPCService

LOG = logging.getLogger(__name__)


def make_database(conf: Any) -> Database:
    return Database(conf.database.connection, conf.database.pool_size,
                    conf.database.max_overflow)


def make_notifier(conf: Any, transport: Any, publisher_id: str) -> Any:
    driver = "noop" if conf.notifications.driver == "noop" else "messaging"
    return rpc.Notifier(transport, publisher_id=publisher_id, driver=driver)


def _db_heartbeat(db: Database, host: str, binary: str, topic: str) -> Any:
    return lambda: db_services.service_heartbeat(db, host, binary, topic)


def make_conductor(conf: Any, transport: Any, db: Database) -> RPCService:
    host = conf.DEFAULT.host
    manager = ConductorManager(conf, db, transport,
                               make_notifier(conf, transport, f"conductor.{host}"))
    return RPCService(binary="stratus-conductor", topic=CONDUCTOR_TOPIC, host=host,
                      manager=manager, transport=transport,
                      heartbeat=_db_heartbeat(db, host, "stratus-conductor", CONDUCTOR_TOPIC),
                      report_interval=conf.DEFAULT.report_interval,
                      workers=conf.DEFAULT.executor_thread_pool_size)


def make_scheduler(conf: Any, transport: Any, db: Database) -> RPCService:
    host = conf.DEFAULT.host
    return RPCService(binary="stratus-scheduler", topic=SCHEDULER_TOPIC, host=host,
                      manager=SchedulerManager(conf, db), transport=transport,
                      heartbeat=_db_heartbeat(db, host, "stratus-scheduler", SCHEDULER_TOPIC),
                      report_interval=conf.DEFAULT.report_interval,
                      workers=conf.DEFAULT.executor_thread_pool_size)


def driver_options(conf: Any, image_client: Any = None) -> dict[str, Any]:
    """The options of the virt driver ``[compute] driver`` names."""
    if conf.compute.driver == "libvirt":
        from stratus.image.client import ImageClient

        lv = conf.libvirt
        return {"virt_type": lv.virt_type, "connection_uri": lv.connection_uri,
                "instances_path": lv.instances_path, "images_path": lv.images_path,
                "wait_soft_reboot_seconds": lv.wait_soft_reboot_seconds,
                "image_cache_max_age": lv.image_cache_max_age,
                "force_config_drive": conf.DEFAULT.force_config_drive,
                "image_client": image_client or ImageClient.from_conf(conf)}
    return {"vcpus": conf.fake.vcpus, "memory_mb": conf.fake.memory_mb,
            "local_gb": conf.fake.local_gb, "delay": conf.fake.delay}


def make_compute(conf: Any, transport: Any) -> Any:
    """A compute host (an RPCService), or with ``[fake] hosts`` many fake ones
    (a FakeFleet): note it gets no database, only the conductor."""
    host = conf.DEFAULT.host
    if conf.fake.hosts:
        if conf.compute.driver != "fake":
            raise exception.ConfigError(reason="[fake] hosts needs [compute] driver = fake")
        from stratus.compute.fleet import FakeFleet

        return FakeFleet(conf, transport, conf.fake.hosts,
                         make_notifier(conf, transport, f"compute.{host}"))
    conductor = ConductorAPI(transport, conf.DEFAULT.rpc_response_timeout)
    from stratus.image.client import ImageClient

    image_client = ImageClient.from_conf(conf)  # images in, snapshots out, over HTTP
    driver = load_driver(conf.compute.driver, host, driver_options(conf, image_client))
    manager = compute_manager.ComputeManager(conf, host, driver, conductor,
                                             make_notifier(conf, transport, f"compute.{host}"),
                                             image_api=image_client)
    return RPCService(binary=compute_manager.BINARY, topic=compute_manager.TOPIC, host=host,
                      manager=manager, transport=transport,
                      heartbeat=lambda: conductor.service_heartbeat(
                          get_admin_context(), host, compute_manager.BINARY,
                          compute_manager.TOPIC),
                      report_interval=conf.DEFAULT.report_interval,
                      workers=conf.DEFAULT.executor_thread_pool_size)
