"""Quotas: Nova's compute quotas and Glance's image quotas, in one place.

A project's limit for a resource is its own row in ``quotas`` (set by an
administrator with ``PUT /os-quota-sets/{project}``), else the ``default``
quota class's row (``PUT /os-quota-class-sets/default``), else the
``[quota]`` option of the same name; -1 is unlimited. As in Nova, only the
``default`` class matters for enforcement; other classes are stored and
shown. Usage is counted from the
resources themselves (:mod:`stratus.db.quotas`), never kept in a table that
could drift.

Checks that count usage and then add to it run inside
:func:`stratus.db.quotas.locked_write`, which serialises them per project, so
concurrent requests can never take a project past its quota (Nova counts,
creates, then counts again and deletes what went over; here the count and
the insert are one transaction). The check functions below are pure: limits
and usage in, an exception with Nova's (or Glance's) message out.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Sequence

from sqlalchemy.orm import Session

from stratus import exception
from stratus.db import quotas as db_quotas
from stratus.db.session import Database

UNLIMITED = -1
MIB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Resource:
    """A quota resource: its API name and the ``[quota]`` option holding its
    default (None: always unlimited unless set, Nova's nova-network leftovers)."""

    name: str
    option: str | None


# nova/quota.py QUOTAS, in the order Nova lists them (sorted by name).
COMPUTE_RESOURCES: tuple[Resource, ...] = tuple(sorted((
    Resource("instances", "instances"),
    Resource("cores", "cores"),
    Resource("ram", "ram"),
    Resource("metadata_items", "metadata_items"),
    Resource("injected_files", "injected_files"),
    Resource("injected_file_content_bytes", "injected_file_content_bytes"),
    Resource("injected_file_path_bytes", "injected_file_path_length"),
    Resource("key_pairs", "key_pairs"),
    Resource("server_groups", "server_groups"),
    Resource("server_group_members", "server_group_members"),
    # Deprecated nova-network quotas, kept in the 2.1 responses; never enforced.
    Resource("fixed_ips", None),
    Resource("floating_ips", None),
    Resource("security_groups", None),
    Resource("security_group_rules", None),
), key=lambda r: r.name))
COMPUTE_NAMES: tuple[str, ...] = tuple(r.name for r in COMPUTE_RESOURCES)

# Glance's unified-limits resource names (image_size_total is in MiB).
IMAGE_COUNT_TOTAL = "image_count_total"
IMAGE_SIZE_TOTAL = "image_size_total"
IMAGE_RESOURCES: tuple[Resource, ...] = (Resource(IMAGE_COUNT_TOTAL, IMAGE_COUNT_TOTAL),
                                         Resource(IMAGE_SIZE_TOTAL, IMAGE_SIZE_TOTAL))

# Counted per project: what os-quota-sets/detail shows in use and what an
# update may not go below (Nova shows key_pairs as 0: they are per user).
COUNTED = ("instances", "cores", "ram")


# -- errors (nova/exception.py, glance/common/exception.py) -----------------------

class TooManyInstances(exception.OverQuota):
    msg_fmt = ("Quota exceeded for %(overs)s: Requested %(req)s, but already used "
               "%(used)s of %(allowed)s %(overs)s")


class MetadataLimitExceeded(exception.OverQuota):
    msg_fmt = "Maximum number of metadata items exceeds %(allowed)d"


class OnsetFileLimitExceeded(exception.OverQuota):
    msg_fmt = "Personality file limit exceeded"


class OnsetFilePathLimitExceeded(OnsetFileLimitExceeded):
    msg_fmt = "Personality file path exceeds maximum %(allowed)s"


class OnsetFileContentLimitExceeded(OnsetFileLimitExceeded):
    msg_fmt = "Personality file content exceeds maximum %(allowed)s"


class KeypairLimitExceeded(exception.OverQuota):
    msg_fmt = "Quota exceeded, too many key pairs."  # the keypairs API's text


class ServerGroupLimitExceeded(exception.OverQuota):
    msg_fmt = "Quota exceeded, too many server groups."  # the server groups API's text


class ServerGroupMembersExceeded(exception.OverQuota):
    msg_fmt = "Quota exceeded, too many servers in group"  # nova/compute/api.py's text


class ImageLimitExceeded(exception.StratusException):
    """Glance's LimitExceeded (413) around oslo.limit's ProjectOverLimit text."""

    msg_fmt = ("The request returned a 413 Request Entity Too Large. This generally means "
               "that rate limiting or a quota threshold was breached.\n\nThe response body:"
               "\nProject %(project_id)s is over a limit for [Resource %(resource)s is over "
               "limit of %(limit)s due to current usage %(usage)s and delta %(delta)s]")
    code = 413


# -- pure checks -----------------------------------------------------------------

def is_over(limit: int, value: int) -> bool:
    """True when ``value`` (usage plus what is asked) does not fit in ``limit``."""
    return 0 <= limit < value


def check_instances(limits: Mapping[str, int], usage: Mapping[str, int], vcpus: int,
                    memory_mb: int, min_count: int, max_count: int) -> int:
    """How many of ``min_count..max_count`` instances of this size fit in the
    instances/cores/ram quotas: max_count if they all do, else as many as
    fit if that is at least min_count, else TooManyInstances (Nova's
    check_num_instances_quota, its message included)."""
    asked = {"instances": max_count, "cores": max_count * vcpus, "ram": max_count * memory_mb}
    overs = sorted(r for r in COUNTED if is_over(limits[r], usage[r] + asked[r]))
    if not overs:
        return max_count
    per_instance = {"instances": 1, "cores": vcpus, "ram": memory_mb}
    allowed: float = math.inf
    for resource in COUNTED:
        if limits[resource] >= 0 and per_instance[resource]:
            headroom = limits[resource] - usage[resource]
            allowed = min(allowed, headroom // per_instance[resource])
    if min_count <= allowed <= max_count:
        return int(allowed)
    requested = {"instances": str(min_count) if min_count == max_count
                 else f"{min_count}-{max_count}",
                 "cores": asked["cores"], "ram": asked["ram"]}
    raise TooManyInstances(overs=", ".join(overs),
                           req=", ".join(str(requested[r]) for r in overs),
                           used=", ".join(str(usage[r]) for r in overs),
                           allowed=", ".join(str(limits[r]) for r in overs))


def check_metadata(limits: Mapping[str, int], count: int) -> None:
    """A server may not have more than ``metadata_items`` metadata items."""
    if count and is_over(limits["metadata_items"], count):
        raise MetadataLimitExceeded(allowed=limits["metadata_items"])


def check_injected_files(limits: Mapping[str, int],
                         files: Sequence[tuple[str, str]]) -> None:
    """Nova's _check_injected_file_quota: the number of files, then the
    longest path (reported first) and the largest content (its base64 text,
    as Nova measures it)."""
    if not files:
        return
    if is_over(limits["injected_files"], len(files)):
        raise OnsetFileLimitExceeded()
    path_limit = limits["injected_file_path_bytes"]
    if is_over(path_limit, max(len(path) for path, _ in files)):
        raise OnsetFilePathLimitExceeded(allowed=path_limit)
    content_limit = limits["injected_file_content_bytes"]
    if is_over(content_limit, max(len(content) for _, content in files)):
        raise OnsetFileContentLimitExceeded(allowed=content_limit)


def check_key_pairs(limit: int, count: int) -> None:
    """One more key pair for a user who has ``count`` (``limit``: key_pairs)."""
    if is_over(limit, count + 1):
        raise KeypairLimitExceeded()


def check_server_groups(limits: Mapping[str, int], count: int) -> None:
    """One more server group for a project that has ``count``."""
    if is_over(limits["server_groups"], count + 1):
        raise ServerGroupLimitExceeded()


def check_group_members(limits: Mapping[str, int], members: int, adding: int) -> None:
    """``adding`` new servers in a group that has ``members`` live ones."""
    if adding and is_over(limits["server_group_members"], members + adding):
        raise ServerGroupMembersExceeded()


def check_image_count(project_id: str, limits: Mapping[str, int], count: int) -> None:
    """One more image for a project that owns ``count``."""
    if is_over(limits[IMAGE_COUNT_TOTAL], count + 1):
        raise ImageLimitExceeded(project_id=project_id, resource=IMAGE_COUNT_TOTAL,
                                 limit=limits[IMAGE_COUNT_TOTAL], usage=count, delta=1)


def image_bytes_left(limits: Mapping[str, int], stored: int) -> int | None:
    """Bytes the project may still store (None: unlimited)."""
    limit = limits[IMAGE_SIZE_TOTAL]
    return None if limit < 0 else max(0, limit * MIB - stored)


def image_size_exceeded(project_id: str, limits: Mapping[str, int], stored: int,
                        adding: int) -> ImageLimitExceeded:
    """The 413 for ``adding`` bytes to ``stored`` past image_size_total (usage
    and delta in MiB, rounded down and up)."""
    return ImageLimitExceeded(project_id=project_id, resource=IMAGE_SIZE_TOTAL,
                              limit=limits[IMAGE_SIZE_TOTAL], usage=stored // MIB,
                              delta=-(-adding // MIB))


def check_image_size(project_id: str, limits: Mapping[str, int], stored: int,
                     adding: int) -> None:
    """``adding`` more bytes must keep the project within image_size_total (MiB)."""
    left = image_bytes_left(limits, stored)
    if left is not None and adding > left:
        raise image_size_exceeded(project_id, limits, stored, adding)


# -- limits and usage ---------------------------------------------------------------

class QuotaEngine:
    """Defaults from ``[quota]``, a project's limits and usage, and the
    administrator's updates."""

    def __init__(self, conf: Any) -> None:
        self.conf = conf

    def config_defaults(self, resources: Sequence[Resource] = COMPUTE_RESOURCES
                        ) -> dict[str, int]:
        """The ``[quota]`` options (-1 for the never-enforced network quotas)."""
        return {r.name: UNLIMITED if r.option is None else int(getattr(self.conf.quota,
                                                                        r.option))
                for r in resources}

    def defaults(self, resources: Sequence[Resource] = COMPUTE_RESOURCES,
                 s: Session | None = None) -> dict[str, int]:
        """Nova's get_defaults: the ``default`` quota class's rows (read with
        ``s``; without it, the options alone) over the ``[quota]`` options.
        Glance's image quotas have no classes."""
        defaults = self.config_defaults(resources)
        if s is not None:
            own = db_quotas.class_limits_get(s, db_quotas.DEFAULT_QUOTA_CLASS)
            defaults.update({k: v for k, v in own.items()
                             if k in defaults and k in COMPUTE_NAMES})
        return defaults

    def class_limits(self, s: Session, class_name: str) -> dict[str, int]:
        """Nova's get_class_quotas: the class's rows over the defaults."""
        limits = self.defaults(s=s)
        own = db_quotas.class_limits_get(s, class_name)
        limits.update({k: v for k, v in own.items() if k in limits})
        return limits

    def limits(self, s: Session, project_id: str | None,
               resources: Sequence[Resource] = COMPUTE_RESOURCES) -> dict[str, int]:
        """The project's limits: its own where set, the defaults (the
        ``default`` class, then ``[quota]``) elsewhere."""
        limits = self.defaults(resources, s)
        if project_id is not None:
            own = db_quotas.limits_get(s, project_id)
            limits.update({k: v for k, v in own.items() if k in limits})
        return limits

    @staticmethod
    def usage(s: Session, project_id: str | None) -> dict[str, int]:
        """In-use counts of every compute resource (0 for what is not counted)."""
        usage = dict.fromkeys(COMPUTE_NAMES, 0)
        if project_id is not None:
            usage.update(db_quotas.count_instances(s, project_id))
            usage["server_groups"] = db_quotas.count_server_groups(s, project_id)
        return usage

    def detail(self, s: Session, project_id: str) -> dict[str, dict[str, int]]:
        """os-quota-sets/detail: limit, in_use and reserved (always 0) of each."""
        limits = self.limits(s, project_id)
        usage = self.usage(s, project_id)
        return {name: {"in_use": usage[name], "limit": limits[name], "reserved": 0}
                for name in COMPUTE_NAMES}

    def update(self, db: Database, project_id: str, values: Mapping[str, int],
               force: bool = False) -> None:
        """Set the project's own limits. Unless ``force``, a limit below what
        the project uses is a 400 and nothing changes (Nova's message). Holds
        the project's lock, so it cannot interleave with a create."""
        with db_quotas.locked_write(db, project_id) as s:
            if not force:
                usage = self.usage(s, project_id)
                for name, limit in values.items():
                    if limit != UNLIMITED and limit < usage.get(name, 0):
                        raise exception.Invalid(
                            f"Quota limit {limit} for {name} must be greater than or equal "
                            f"to already used and reserved {usage.get(name, 0)}.")
            db_quotas.limits_set(s, project_id, values)

    @staticmethod
    def update_class(db: Database, class_name: str, values: Mapping[str, int]) -> None:
        """Set a quota class's limits (no usage check: a class has none)."""
        with db.write() as s:
            db_quotas.class_limits_set(s, class_name, values)

    @staticmethod
    def revert(db: Database, project_id: str) -> None:
        """Drop the project's own limits: it has the defaults again."""
        with db_quotas.locked_write(db, project_id) as s:
            db_quotas.limits_destroy(s, project_id)
