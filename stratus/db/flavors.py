"""Queries for flavors, their extra specs and their project access lists.

Visibility follows Nova (nova/objects/flavor.py): an admin context sees
every flavor; any other context sees public flavors and the private ones its
project was given access to. ``ctx=None`` means an internal caller and sees
everything. Flavors come back as plain dicts: the columns plus
``extra_specs`` ({key: value}) and ``projects`` ([project_id, ...]).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from stratus import exception
from stratus.context import RequestContext
from stratus.db.common import to_dict
from stratus.db.models import Flavor, FlavorExtraSpec, FlavorProject
from stratus.db.session import Database
from stratus.utils import new_uuid

# Columns a flavor list may be sorted by (the non-nullable ones).
SORT_KEYS = frozenset({"id", "flavorid", "name", "memory_mb", "vcpus", "root_gb",
                       "ephemeral_gb", "swap", "rxtx_factor", "disabled", "is_public",
                       "created_at"})

# DevStack's flavors (lib/nova create_flavors, lib/tempest m1.nano/m1.micro).
DEFAULT_FLAVORS: tuple[dict[str, Any], ...] = (
    {"flavorid": "1", "name": "m1.tiny", "memory_mb": 512, "vcpus": 1, "root_gb": 1},
    {"flavorid": "2", "name": "m1.small", "memory_mb": 2048, "vcpus": 1, "root_gb": 20},
    {"flavorid": "3", "name": "m1.medium", "memory_mb": 4096, "vcpus": 2, "root_gb": 40},
    {"flavorid": "4", "name": "m1.large", "memory_mb": 8192, "vcpus": 4, "root_gb": 80},
    {"flavorid": "5", "name": "m1.xlarge", "memory_mb": 16384, "vcpus": 8, "root_gb": 160},
    {"flavorid": "42", "name": "m1.nano", "memory_mb": 128, "vcpus": 1, "root_gb": 1},
    {"flavorid": "84", "name": "m1.micro", "memory_mb": 192, "vcpus": 1, "root_gb": 1},
)
DEFAULT_FLAVOR_EXTRA_SPECS = {"hw_rng:allowed": "True"}


class FlavorExists(exception.Conflict):
    msg_fmt = "Flavor with name %(name)s already exists."


class FlavorIdExists(exception.Conflict):
    msg_fmt = "Flavor with ID %(flavor_id)s already exists."


class FlavorAccessExists(exception.Conflict):
    msg_fmt = ("Flavor access already exists for flavor %(flavor_id)s "
               "and project %(project_id)s combination.")


class FlavorAccessNotFound(exception.NotFound):
    msg_fmt = "Flavor access not found for %(flavor_id)s / %(project_id)s combination."


class FlavorExtraSpecsNotFound(exception.NotFound):
    msg_fmt = "Flavor %(flavor_id)s has no extra specs with key %(key)s."


class FlavorExtraSpecUpdateCreateFailed(exception.Conflict):
    msg_fmt = ("Flavor %(id)s extra spec cannot be updated or created "
               "after %(retries)d retries.")


class MarkerNotFound(exception.Invalid):
    msg_fmt = "marker [%(marker)s] not found"


class InvalidSortKey(exception.Invalid):
    msg_fmt = "Sort key supplied is invalid: %(key)s"


class InvalidSortDir(exception.Invalid):
    msg_fmt = "Unknown sort direction, must be 'desc' or 'asc'"


def _as_dict(flavor: Flavor) -> dict[str, Any]:
    d = to_dict(flavor)
    d["extra_specs"] = {spec.key: spec.value for spec in flavor.extra_specs}
    d["projects"] = sorted(p.project_id for p in flavor.projects)
    return d


def _visible(q: Select, ctx: RequestContext | None) -> Select:
    """Restrict ``q`` to the flavors ``ctx`` may see."""
    if ctx is None or ctx.is_admin:
        return q
    return q.where(or_(Flavor.is_public.is_(True),
                       Flavor.projects.any(FlavorProject.project_id == ctx.project_id)))


def _get(s: Session, flavorid: str, ctx: RequestContext | None) -> Flavor:
    q = _visible(select(Flavor).where(Flavor.flavorid == str(flavorid)), ctx)
    flavor = s.scalars(q).one_or_none()
    if flavor is None:
        raise exception.FlavorNotFound(flavor_id=flavorid)
    return flavor


# -- flavors -------------------------------------------------------------------

def flavor_create(db: Database, *, name: str, memory_mb: int, vcpus: int, root_gb: int,
                  ephemeral_gb: int = 0, flavorid: str | None = None, swap: int = 0,
                  rxtx_factor: float = 1.0, is_public: bool = True,
                  description: str | None = None,
                  extra_specs: dict[str, str] | None = None) -> dict[str, Any]:
    """Create a flavor; a missing ``flavorid`` gets a UUID, as in Nova.

    Raises FlavorIdExists or FlavorExists (409) when either is taken.
    """
    flavorid = str(flavorid) if flavorid else new_uuid()
    try:
        with db.write() as s:
            if s.scalar(select(Flavor.id).where(Flavor.flavorid == flavorid)) is not None:
                raise FlavorIdExists(flavor_id=flavorid)
            if s.scalar(select(Flavor.id).where(Flavor.name == name)) is not None:
                raise FlavorExists(name=name)
            flavor = Flavor(flavorid=flavorid, name=name, memory_mb=memory_mb, vcpus=vcpus,
                            root_gb=root_gb, ephemeral_gb=ephemeral_gb, swap=swap,
                            rxtx_factor=rxtx_factor, disabled=False, is_public=is_public,
                            description=description)
            flavor.extra_specs = [FlavorExtraSpec(key=k, value=v)
                                  for k, v in (extra_specs or {}).items()]
            s.add(flavor)
            s.flush()
            return _as_dict(flavor)
    except IntegrityError as exc:
        # Lost a race with a concurrent create of the same name or id.
        if "flavorid" in str(exc.orig):
            raise FlavorIdExists(flavor_id=flavorid)
        raise FlavorExists(name=name)


def flavor_get_by_flavorid(db: Database, flavorid: str | int,
                           ctx: RequestContext | None = None) -> dict[str, Any]:
    """The flavor with API id ``flavorid`` as ``ctx`` may see it (FlavorNotFound: 404).

    Disabled flavors are returned too (with ``disabled`` set); callers that
    build servers must refuse those themselves.
    """
    with db.read() as s:
        return _as_dict(_get(s, str(flavorid), ctx))


def flavor_update_description(db: Database, flavorid: str, description: str | None,
                              ctx: RequestContext | None = None) -> dict[str, Any]:
    """Set the flavor's description (PUT /flavors/{id}, 2.55); FlavorNotFound: 404."""
    with db.write() as s:
        flavor = _get(s, flavorid, ctx)
        flavor.description = description
        s.flush()
        return _as_dict(flavor)


def flavor_get_all(db: Database, ctx: RequestContext | None, *,
                   is_public: bool | None = True, disabled: bool | None = None,
                   min_memory_mb: int | None = None, min_root_gb: int | None = None,
                   sort_key: str = "flavorid", sort_dir: str = "asc",
                   limit: int | None = None, marker: str | None = None) -> list[dict[str, Any]]:
    """Flavors ``ctx`` may see, filtered, sorted by (sort_key, id) and paged.

    ``is_public=True`` means public flavors plus the private ones the
    context's project can use; False only private ones; None all of them.
    """
    if sort_key not in SORT_KEYS:
        raise InvalidSortKey(key=sort_key)
    if sort_dir not in ("asc", "desc"):
        raise InvalidSortDir()
    column = getattr(Flavor, sort_key)
    with db.read() as s:
        q = _visible(select(Flavor), ctx)
        if min_memory_mb is not None:
            q = q.where(Flavor.memory_mb >= min_memory_mb)
        if min_root_gb is not None:
            q = q.where(Flavor.root_gb >= min_root_gb)
        if disabled is not None:
            q = q.where(Flavor.disabled.is_(disabled))
        if is_public is not None:
            public_filter = Flavor.is_public.is_(is_public)
            if is_public and ctx is not None and ctx.project_id is not None:
                public_filter = or_(public_filter, Flavor.projects.any(
                    FlavorProject.project_id == ctx.project_id))
            q = q.where(public_filter)
        if marker is not None:
            mark = s.scalars(_visible(select(Flavor).where(Flavor.flavorid == marker),
                                      ctx)).one_or_none()
            if mark is None:
                raise MarkerNotFound(marker=marker)
            q = q.where(_after(column, getattr(mark, sort_key), mark.id, sort_dir))
        if sort_dir == "asc":
            q = q.order_by(column.asc(), Flavor.id.asc())
        else:
            q = q.order_by(column.desc(), Flavor.id.desc())
        if limit is not None:
            q = q.limit(limit)
        return [_as_dict(f) for f in s.scalars(q)]


def _after(column: Any, value: Any, row_id: int, sort_dir: str) -> Any:
    """Rows strictly after (value, row_id) in (column, id) order."""
    if column is Flavor.id:
        return Flavor.id > row_id if sort_dir == "asc" else Flavor.id < row_id
    if sort_dir == "asc":
        return or_(column > value, and_(column == value, Flavor.id > row_id))
    return or_(column < value, and_(column == value, Flavor.id < row_id))


def flavor_destroy(db: Database, flavorid: str) -> None:
    """Delete a flavor (its extra specs and access list go with it)."""
    with db.write() as s:
        s.delete(_get(s, flavorid, None))


def ensure_default_flavors(db: Database) -> int:
    """Create DevStack's standard flavors when there are no flavors at all.

    Returns how many were created (0 when the table already had flavors, or
    when another process seeded it at the same moment).
    """
    try:
        with db.write() as s:
            if s.scalar(select(func.count(Flavor.id))):
                return 0
            for values in DEFAULT_FLAVORS:
                flavor = Flavor(ephemeral_gb=0, swap=0, rxtx_factor=1.0, disabled=False,
                                is_public=True, **values)
                flavor.extra_specs = [FlavorExtraSpec(key=k, value=v)
                                      for k, v in DEFAULT_FLAVOR_EXTRA_SPECS.items()]
                s.add(flavor)
    except IntegrityError:
        return 0
    return len(DEFAULT_FLAVORS)


# -- extra specs ---------------------------------------------------------------

def extra_specs_get(db: Database, flavorid: str,
                    ctx: RequestContext | None = None) -> dict[str, str]:
    with db.read() as s:
        return {spec.key: spec.value for spec in _get(s, flavorid, ctx).extra_specs}


def extra_specs_update_or_create(db: Database, flavorid: str, specs: dict[str, str],
                                 ctx: RequestContext | None = None) -> dict[str, str]:
    """Set ``specs`` on the flavor (others are kept); returns all its extra specs.

    A concurrent writer of the same new key makes this a 409, as in Nova.
    """
    try:
        with db.write() as s:
            flavor = _get(s, flavorid, ctx)
            existing = {spec.key: spec for spec in flavor.extra_specs}
            for key, value in specs.items():
                if key in existing:
                    existing[key].value = value
                else:
                    flavor.extra_specs.append(FlavorExtraSpec(key=key, value=value))
            s.flush()
            return {spec.key: spec.value for spec in flavor.extra_specs}
    except IntegrityError:
        raise FlavorExtraSpecUpdateCreateFailed(id=flavorid, retries=1)


def extra_spec_delete(db: Database, flavorid: str, key: str,
                      ctx: RequestContext | None = None) -> None:
    with db.write() as s:
        flavor = _get(s, flavorid, ctx)
        for spec in flavor.extra_specs:
            if spec.key == key:
                flavor.extra_specs.remove(spec)
                return
        raise FlavorExtraSpecsNotFound(flavor_id=flavorid, key=key)


# -- access lists --------------------------------------------------------------

def flavor_access_get(db: Database, flavorid: str,
                      ctx: RequestContext | None = None) -> list[str]:
    """Project ids with access to the flavor, sorted."""
    with db.read() as s:
        return sorted(p.project_id for p in _get(s, flavorid, ctx).projects)


def flavor_access_add(db: Database, flavorid: str, project_id: str,
                      ctx: RequestContext | None = None) -> list[str]:
    """Give ``project_id`` access; returns the new access list."""
    with db.write() as s:
        flavor = _get(s, flavorid, ctx)
        if any(p.project_id == project_id for p in flavor.projects):
            raise FlavorAccessExists(flavor_id=flavorid, project_id=project_id)
        flavor.projects.append(FlavorProject(project_id=project_id))
        s.flush()
        return sorted(p.project_id for p in flavor.projects)


def flavor_access_remove(db: Database, flavorid: str, project_id: str,
                         ctx: RequestContext | None = None) -> list[str]:
    """Take access away from ``project_id``; returns the new access list."""
    with db.write() as s:
        flavor = _get(s, flavorid, ctx)
        for access in flavor.projects:
            if access.project_id == project_id:
                flavor.projects.remove(access)
                s.flush()
                return sorted(p.project_id for p in flavor.projects)
        raise FlavorAccessNotFound(flavor_id=flavorid, project_id=project_id)
