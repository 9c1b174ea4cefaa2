"""Image records and data: Glance's rules for visibility, ownership and states.

``ImageService`` is what the Image API handlers call and what the compute
API uses (``get``) to resolve the ``imageRef`` of a boot request. Records
are plain dicts (the ``images`` row, ``properties`` holding the extra
properties); :mod:`stratus.image.views` renders them in Glance's format.

Visibility: an admin sees every image; anyone else sees their project's
images, public and community images, and ``shared`` images whose owner
added their project as a member (Glance's rules: any member sees the image by
id; lists show it once the member accepted it, or with ``member_status``).

Policy: every operation also goes through the policy engine with Glance's
rule names and defaults (``add_image``, ``modify_image``, ``get_images``...,
see :mod:`stratus.policy.defaults`): a project's ``reader`` sees its images
but changes nothing, its ``member`` acts on them, ``admin`` acts everywhere.
The rule's target is the image (``project_id``/``owner`` its owner,
``visibility``, ``member_id``). A refusal is Glance's 403 "You are not
authorized to complete <rule> action."

Data upload moves an image ``queued -> saving -> active`` with
compare-and-swap updates, so two concurrent uploads cannot both proceed and
an image deleted mid-upload does not come back to life.
"""
from __future__ import annotations

import dataclasses
import datetime
import functools
import struct
from typing import Any, Callable, Iterable, Iterator

from sqlalchemy import Select, and_, delete, false, func, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stratus import exception, policy, quota
from stratus.context import RequestContext
from stratus.db import quotas as db_quotas
from stratus.db.common import to_dict
from stratus.db.models import Image, ImageMember
from stratus.db.session import Database
from stratus.image import schemas
from stratus.image.store import FileStore, StoredData
from stratus.quota import QuotaEngine
from stratus.utils import is_uuid_like, new_uuid, parse_isotime, utcnow


class ImageNotActive(exception.Invalid):
    msg_fmt = "Image %(image_id)s is not active."


class ImageGone(exception.StratusException):
    msg_fmt = ("Image %(image_id)s could not be found after upload. The image may have "
               "been deleted during the upload.")
    code = 410


class ImageTooLarge(exception.StratusException):
    msg_fmt = "The provided image is too large."
    code = 413


class ImageMemberLimitExceeded(exception.StratusException):
    msg_fmt = "Image member limit exceeded for image %(image_id)s: 128."
    code = 413


def authorize(ctx: RequestContext, rule: str, target: dict[str, Any] | None = None) -> None:
    """Glance's policy check: 403 with Glance's message unless ``rule`` allows it."""
    if not policy.check(ctx, rule, target):
        raise exception.Forbidden(f"You are not authorized to complete {rule} action.")


def image_target(ctx: RequestContext, image: Any, member_id: str | None = None) -> dict[str, Any]:
    """The policy target of an image (Glance's ImageTarget). ``member_id`` is
    the member acted on, else the caller's project when it sees someone
    else's shared image (only a member does)."""
    owner = image.owner if isinstance(image, Image) else image["owner"]
    visibility = image.visibility if isinstance(image, Image) else image["visibility"]
    if member_id is None and visibility == "shared" and owner != ctx.project_id:
        member_id = ctx.project_id
    return {"project_id": owner, "owner": owner, "visibility": visibility,
            "member_id": member_id}


class ImageNoData(exception.StratusException):
    """The image has no data yet (the API answers a download with 204)."""

    msg_fmt = "Image %(image_id)s has no data."
    code = 404


SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "virtual_size",
             "id", "created_at", "updated_at", "min_disk", "min_ram", "visibility", "owner")
SORT_DIRS = ("asc", "desc")
IN_FILTERS = ("id", "name", "status", "disk_format", "container_format")
TIME_OPS = {"gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__",
            "eq": "__eq__", "neq": "__ne__"}
BATCH = 200
MEMBER_STATUSES = ("pending", "accepted", "rejected")
MEMBER_QUOTA = 128   # Glance's image_member_quota


@dataclasses.dataclass
class ListQuery:
    """Filters, sort and page of ``GET /v2/images``."""

    limit: int = 25
    marker: str | None = None
    sort: list[tuple[str, str]] = dataclasses.field(
        default_factory=lambda: [("created_at", "desc")])
    name: list[str] | None = None
    ids: list[str] | None = None
    status: list[str] | None = None
    disk_format: list[str] | None = None
    container_format: list[str] | None = None
    visibility: str | None = None
    owner: str | None = None
    protected: bool | None = None
    os_hidden: bool | None = False
    size_min: int | None = None
    size_max: int | None = None
    created_at: list[tuple[str, datetime.datetime]] = dataclasses.field(default_factory=list)
    updated_at: list[tuple[str, datetime.datetime]] = dataclasses.field(default_factory=list)
    tags: list[str] = dataclasses.field(default_factory=list)
    properties: dict[str, str] = dataclasses.field(default_factory=dict)
    member_status: str = "accepted"   # pending, accepted, rejected or all
    min_ram: int | None = None        # at least (Nova's minRam filter)
    min_disk: int | None = None       # at least (Nova's minDisk filter)


@dataclasses.dataclass(frozen=True)
class PatchOp:
    """One change of ``PATCH /v2/images/{id}``: op is add, replace or remove."""

    op: str
    name: str
    value: Any = None


# Sort columns that may be NULL sort as this value instead, identically on
# every database (NULL ordering differs between them).
_NULL_SORT_VALUE: dict[str, Any] = {"name": "", "disk_format": "", "container_format": "",
                                    "owner": "", "size": -1, "virtual_size": -1}


def _sort_column(key: str) -> Any:
    column = getattr(Image, key)
    if key in _NULL_SORT_VALUE:
        return func.coalesce(column, _NULL_SORT_VALUE[key])
    return column


def _sort_value(record: dict[str, Any], key: str) -> Any:
    value = record[key]
    return _NULL_SORT_VALUE.get(key) if value is None else value


def _shared_with(project_id: str | None, status: str = "all") -> Any:
    """Shared images ``project_id`` is a member of (with that member status)."""
    if not project_id:
        return false()
    members = select(ImageMember.id).where(ImageMember.image_id == Image.id,
                                           ImageMember.member == project_id)
    if status != "all":
        members = members.where(ImageMember.status == status)
    return and_(Image.visibility == "shared", members.exists())


def _visible_to(ctx: RequestContext) -> Any:
    if ctx.is_admin:
        return true()
    clauses = [Image.visibility.in_(("public", "community"))]
    if ctx.project_id:
        clauses.append(Image.owner == ctx.project_id)
        clauses.append(_shared_with(ctx.project_id))
    return or_(*clauses)


def qcow2_virtual_size(head: bytes) -> int | None:
    """The virtual size recorded in a qcow2 header, if ``head`` starts one."""
    if len(head) >= 32 and head[:4] == b"QFI\xfb":
        return int(struct.unpack(">Q", head[24:32])[0])
    return None


def virtual_size(disk_format: str | None, data: StoredData) -> int | None:
    if disk_format in ("raw", "iso"):
        return data.size
    if disk_format == "qcow2":
        return qcow2_virtual_size(data.head)
    return None


class ImageService:
    """Glance's image API logic over the shared database and a FileStore."""

    def __init__(self, db: Database, store: FileStore, max_image_size: int | None = None,
                 disk_formats: Iterable[str] | None = None,
                 container_formats: Iterable[str] | None = None,
                 quotas: QuotaEngine | None = None) -> None:
        self.db = db
        self.store = store
        self.max_image_size = max_image_size
        self.quotas = quotas  # None: image_count_total / image_size_total not enforced
        self.disk_formats = tuple(disk_formats or schemas.DISK_FORMATS)
        self.container_formats = tuple(container_formats or schemas.CONTAINER_FORMATS)

    @classmethod
    def from_conf(cls, conf: Any, db: Database, store: FileStore) -> "ImageService":
        return cls(db, store, max_image_size=conf.image.max_image_size,
                   disk_formats=conf.image.disk_formats,
                   container_formats=conf.image.container_formats,
                   quotas=QuotaEngine(conf))

    # -- quotas (Glance's image_count_total and image_size_total) --------------
    def _limits(self, s: Session, owner: str | None) -> dict[str, int] | None:
        """The owner's image limits, or None when they are not enforced."""
        if self.quotas is None or owner is None:
            return None
        return self.quotas.limits(s, owner, quota.IMAGE_RESOURCES)

    def _quota_lock(self, owner: str | None) -> str | None:
        return owner if self.quotas is not None else None

    def _check_formats(self, values: dict[str, Any]) -> None:
        """Formats outside the configured lists are a 400 (as Glance's config lists)."""
        for key, allowed in (("disk_format", self.disk_formats),
                             ("container_format", self.container_formats)):
            value = values.get(key)
            if value is not None and value not in allowed:
                raise exception.Invalid(f"Invalid {key} '{value}' for image; allowed: "
                                        f"{', '.join(allowed)}.")

    # -- for the compute API -------------------------------------------------
    def get(self, ctx: RequestContext, image_id: str) -> dict[str, Any]:
        """The image ``image_id`` in Nova's image-meta form, for booting.

        ImageNotFound unless it exists and ``ctx`` may see it; ImageNotActive
        (400) unless it is active. Standard attributes are top-level keys and
        extra properties are in ``properties``.
        """
        record = self.show(ctx, image_id)
        if record["status"] != "active":
            raise ImageNotActive(image_id=image_id)
        return image_meta(record)

    # -- reads ---------------------------------------------------------------
    def show(self, ctx: RequestContext, image_id: str) -> dict[str, Any]:
        """The image record; ImageNotFound if missing, deleted or invisible to ``ctx``."""
        with self.db.read() as s:
            image = self._get_visible(s, ctx, image_id)
            authorize(ctx, "get_image", image_target(ctx, image))
            return to_dict(image)

    def _get_visible(self, s: Session, ctx: RequestContext, image_id: str) -> Image:
        if not is_uuid_like(image_id):
            raise exception.ImageNotFound(image_id=image_id)
        image = s.scalars(select(Image).where(Image.id == image_id,
                                              Image.deleted == false(),
                                              _visible_to(ctx))).one_or_none()
        if image is None:
            raise exception.ImageNotFound(image_id=image_id)
        return image

    def list_images(self, ctx: RequestContext, query: ListQuery) -> list[dict[str, Any]]:
        """One page of the images ``ctx`` may see that match ``query``."""
        authorize(ctx, "get_images", {"project_id": ctx.project_id})
        sort = list(query.sort)
        if "id" not in [k for k, _ in sort]:
            sort.append(("id", sort[-1][1] if sort else "desc"))
        with self.db.read() as s:
            base = self._list_query(ctx, query)
            marker = None
            if query.marker is not None:
                try:
                    marker = to_dict(self._get_visible(s, ctx, query.marker))
                except exception.ImageNotFound:
                    raise exception.Invalid(f"Invalid marker. Image {query.marker} "
                                            f"could not be found.")
            return self._page(s, base, sort, marker, query)

    def _list_query(self, ctx: RequestContext, query: ListQuery) -> Select:
        q = select(Image).where(Image.deleted == false())
        if ctx.is_admin:
            if query.visibility not in (None, "all"):
                q = q.where(Image.visibility == query.visibility)
        else:
            mine = Image.owner == ctx.project_id if ctx.project_id else false()
            shared = _shared_with(ctx.project_id, query.member_status)
            if query.visibility is None:
                q = q.where(or_(mine, Image.visibility == "public", shared))
            elif query.visibility == "all":
                q = q.where(or_(mine, Image.visibility.in_(("public", "community")), shared))
            elif query.visibility in ("public", "community"):
                q = q.where(Image.visibility == query.visibility)
            elif query.visibility == "shared":
                q = q.where(Image.visibility == "shared", or_(mine, shared))
            else:  # private: only one's own
                q = q.where(and_(mine, Image.visibility == query.visibility))
        for values, column in ((query.ids, Image.id), (query.name, Image.name),
                               (query.status, Image.status),
                               (query.disk_format, Image.disk_format),
                               (query.container_format, Image.container_format)):
            if values is not None:
                q = q.where(column.in_(values))
        if query.owner is not None:
            q = q.where(Image.owner == query.owner)
        if query.protected is not None:
            q = q.where(Image.protected == query.protected)
        if query.os_hidden is not None:
            q = q.where(Image.os_hidden == query.os_hidden)
        if query.size_min is not None:
            q = q.where(Image.size >= query.size_min)
        if query.min_ram is not None:
            q = q.where(Image.min_ram >= query.min_ram)
        if query.min_disk is not None:
            q = q.where(Image.min_disk >= query.min_disk)
        if query.size_max is not None:
            q = q.where(Image.size <= query.size_max)
        for column, conditions in ((Image.created_at, query.created_at),
                                   (Image.updated_at, query.updated_at)):
            for op, value in conditions:
                q = q.where(getattr(column, TIME_OPS[op])(value))
        return q

    def _page(self, s: Session, base: Select, sort: list[tuple[str, str]],
              marker: dict[str, Any] | None, query: ListQuery) -> list[dict[str, Any]]:
        """Keyset pagination; tags and extra properties are filtered here, in
        batches, so a page still holds ``limit`` matches."""
        order = [_sort_column(k).asc() if d == "asc" else _sort_column(k).desc()
                 for k, d in sort]
        filtered_here = bool(query.tags or query.properties)
        batch = BATCH if filtered_here else query.limit
        results: list[dict[str, Any]] = []
        while len(results) < query.limit:
            q = base.order_by(*order).limit(batch)
            if marker is not None:
                q = q.where(_after(sort, marker))
            rows = [to_dict(r) for r in s.scalars(q).all()]
            for record in rows:
                if _matches_extra(record, query):
                    results.append(record)
                    if len(results) == query.limit:
                        break
            if len(rows) < batch:
                break
            marker = rows[-1]
        return results

    # -- writes --------------------------------------------------------------
    def create(self, ctx: RequestContext, values: dict[str, Any]) -> dict[str, Any]:
        """Create an image record (status queued) from the API body."""
        schemas.check_writable_names(values)
        schemas.validate_image(values)
        self._check_formats(values)
        if ctx.project_id is None and not ctx.is_admin:
            raise exception.Forbidden("A project-scoped token is required to create images.")
        owner = values.get("owner", ctx.project_id)
        if owner != ctx.project_id and not ctx.is_admin:
            raise exception.Forbidden(f"You are not permitted to create images owned by "
                                      f"'{owner}'.")
        authorize(ctx, "add_image", {"project_id": ctx.project_id, "owner": owner})
        visibility = values.get("visibility", "shared")
        self._authorize_visibility(ctx, visibility, owner)
        image_id = values.get("id") or new_uuid()
        now = utcnow()
        extra = {k: v for k, v in values.items() if k not in schemas.WRITABLE}
        image = Image(id=image_id, name=values.get("name"), status="queued",
                      visibility=visibility, owner=owner,
                      disk_format=values.get("disk_format"),
                      container_format=values.get("container_format"),
                      min_disk=values.get("min_disk", 0), min_ram=values.get("min_ram", 0),
                      protected=values.get("protected", False),
                      os_hidden=values.get("os_hidden", False),
                      tags=_unique(values.get("tags", [])), properties=extra,
                      created_at=now, updated_at=now, deleted=False)
        duplicate = exception.Conflict(f"Image with identifier {image_id} already exists!")
        with db_quotas.locked_write(self.db, self._quota_lock(owner)) as s:
            if s.get(Image, image_id) is not None:
                raise duplicate
            limits = self._limits(s, owner)
            if limits is not None and owner is not None:
                quota.check_image_count(owner, limits, db_quotas.count_images(s, owner))
            s.add(image)
            try:
                s.flush()
            except IntegrityError:  # created concurrently
                raise duplicate
            return to_dict(image)

    @staticmethod
    def _authorize_visibility(ctx: RequestContext, visibility: Any, owner: Any) -> None:
        """Making an image public or community takes a rule of its own."""
        target = {"project_id": owner, "owner": owner, "visibility": visibility,
                  "member_id": None}
        if visibility == "public":
            authorize(ctx, "publicize_image", target)
        elif visibility == "community":
            authorize(ctx, "communitize_image", target)

    def update(self, ctx: RequestContext, image_id: str,
               changes: list[PatchOp]) -> dict[str, Any]:
        """Apply ``changes`` (add/replace/remove of attributes and properties)."""
        with self.db.write() as s:
            image = self._get_writable(s, ctx, image_id, "modify_image")
            original = _writable_values(to_dict(image))
            values = dict(original)
            for change in changes:
                _apply(values, change)
            changed = {k for k in set(values) | set(original)
                       if values.get(k) != original.get(k)}
            schemas.validate_image(values)
            self._check_formats({k: values[k] for k in changed
                                 if k in ("disk_format", "container_format")})
            if "visibility" in changed:
                self._authorize_visibility(ctx, values["visibility"], image.owner)
            if "owner" in changed and not ctx.is_admin:
                raise exception.Forbidden("Attribute 'owner' can be changed only by an "
                                          "administrator.")
            if "id" in changed:
                raise exception.Forbidden("Attribute 'id' is read-only.")
            for key in schemas.WRITABLE:
                if key == "id":
                    continue
                setattr(image, key, _unique(values[key]) if key == "tags" else values[key])
            image.properties = {k: v for k, v in values.items() if k not in schemas.WRITABLE}
            image.updated_at = utcnow()
            s.flush()
            return to_dict(image)

    def set_tag(self, ctx: RequestContext, image_id: str, tag: str, present: bool) -> None:
        """Add (``present``) or remove one tag; removing a missing tag is a 404."""
        with self.db.write() as s:
            image = self._get_writable(s, ctx, image_id, "modify_image")
            tags = list(image.tags or [])
            if present:
                if len(tag) > 255:
                    raise exception.Invalid("Tag is longer than 255 characters.")
                if tag not in tags:
                    image.tags = tags + [tag]
            else:
                if tag not in tags:
                    raise exception.NotFound(f"Tag {tag} not found.")
                image.tags = [t for t in tags if t != tag]
            image.updated_at = utcnow()

    def set_active(self, ctx: RequestContext, image_id: str, active: bool) -> None:
        """Reactivate (``active``) or deactivate an image; only active <-> deactivated
        is allowed, and doing it twice is harmless."""
        want, other = ("active", "deactivated") if active else ("deactivated", "active")
        with self.db.write() as s:
            image = self._get_writable(s, ctx, image_id,
                                       "reactivate" if active else "deactivate")
            if image.status == want:
                return
            if image.status != other:
                action = "reactivate" if active else "deactivate"
                raise exception.Conflict(f"Not allowed to {action} image in status "
                                         f"'{image.status}'")
            image.status = want
            image.updated_at = utcnow()

    def delete(self, ctx: RequestContext, image_id: str) -> None:
        """Delete the image and its data; protected images are a 403."""
        with self.db.write() as s:
            image = self._get_writable(s, ctx, image_id, "delete_image")
            if image.protected:
                raise exception.Forbidden(f"Image {image_id} is protected and cannot be "
                                          f"deleted.")
            now = utcnow()
            image.deleted = True
            image.deleted_at = now
            image.updated_at = now
            image.status = "deleted"
            s.execute(delete(ImageMember).where(ImageMember.image_id == image_id))
        self.store.delete(image_id)

    def _get_writable(self, s: Session, ctx: RequestContext, image_id: str,
                      rule: str) -> Image:
        """The image, if ``ctx`` owns it (or is admin) and ``rule`` allows it."""
        image = self._get_visible(s, ctx, image_id)
        if not (ctx.is_admin or (ctx.project_id and image.owner == ctx.project_id)):
            raise exception.Forbidden("You are not permitted to modify image "
                                      f"{image_id}.")
        authorize(ctx, rule, image_target(ctx, image))
        return image

    # -- members -------------------------------------------------------------
    def _member_image(self, s: Session, ctx: RequestContext, image_id: str) -> Image:
        image = self._get_visible(s, ctx, image_id)
        if image.visibility != "shared":
            raise exception.Forbidden(f"Error fetching members of image {image_id}: Only "
                                      f"shared images have members.")
        return image

    @staticmethod
    def _is_owner(ctx: RequestContext, image: Image) -> bool:
        return bool(ctx.is_admin or (ctx.project_id and image.owner == ctx.project_id))

    def list_members(self, ctx: RequestContext, image_id: str) -> list[dict[str, Any]]:
        """The owner (or admin) sees every member; a member sees its own membership."""
        with self.db.read() as s:
            image = self._member_image(s, ctx, image_id)
            authorize(ctx, "get_members", image_target(ctx, image))
            q = select(ImageMember).where(ImageMember.image_id == image_id)
            if not self._is_owner(ctx, image):
                q = q.where(ImageMember.member == ctx.project_id)
            return [to_dict(m) for m in s.scalars(q.order_by(ImageMember.id)).all()]

    def get_member(self, ctx: RequestContext, image_id: str, member: str) -> dict[str, Any]:
        with self.db.read() as s:
            image = self._member_image(s, ctx, image_id)
            if not self._is_owner(ctx, image) and member != ctx.project_id:
                raise exception.NotFound(f"Member {member} not found for image {image_id}.")
            authorize(ctx, "get_member", image_target(ctx, image, member))
            return to_dict(self._member_row(s, image_id, member))

    @staticmethod
    def _member_row(s: Session, image_id: str, member: str) -> ImageMember:
        row = s.scalars(select(ImageMember).where(ImageMember.image_id == image_id,
                                                  ImageMember.member == member)
                        ).one_or_none()
        if row is None:
            raise exception.NotFound(f"Member {member} not found for image {image_id}.")
        return row

    def add_member(self, ctx: RequestContext, image_id: str, member: Any) -> dict[str, Any]:
        """Share a ``shared`` image with project ``member`` (status pending); owner only."""
        if not isinstance(member, str) or not member or len(member) > 255:
            raise exception.Invalid("Member to be added not specified")
        conflict = exception.Conflict(f"Member {member} is duplicated for image "
                                      f"{image_id}")
        with self.db.write() as s:
            image = self._member_image(s, ctx, image_id)
            if not self._is_owner(ctx, image):
                raise exception.Forbidden(f"Not allowed to create members for image "
                                          f"{image_id}.")
            authorize(ctx, "add_member", image_target(ctx, image, member))
            exists = s.scalars(select(ImageMember.id).where(
                ImageMember.image_id == image_id, ImageMember.member == member)).first()
            if exists is not None:
                raise conflict
            count = s.scalar(select(func.count(ImageMember.id)).where(
                ImageMember.image_id == image_id)) or 0
            if count >= MEMBER_QUOTA:
                raise ImageMemberLimitExceeded(image_id=image_id)
            now = utcnow()
            row = ImageMember(image_id=image_id, member=member, status="pending",
                              created_at=now, updated_at=now)
            s.add(row)
            try:
                s.flush()
            except IntegrityError:
                raise conflict
            return to_dict(row)

    def update_member(self, ctx: RequestContext, image_id: str, member: str,
                      status: Any) -> dict[str, Any]:
        """Accept, reject or reset a membership: only the member (or admin) may."""
        if status not in MEMBER_STATUSES:
            raise exception.Invalid(f"Provided object does not match schema 'member': "
                                    f"'{status}' is not one of {list(MEMBER_STATUSES)}")
        with self.db.write() as s:
            image = self._member_image(s, ctx, image_id)
            if not ctx.is_admin and member != ctx.project_id:
                if self._is_owner(ctx, image):
                    raise exception.Forbidden("You are not permitted to modify 'status' on "
                                              "this image member.")
                raise exception.NotFound(f"Member {member} not found for image "
                                         f"{image_id}.")
            authorize(ctx, "modify_member", image_target(ctx, image, member))
            row = self._member_row(s, image_id, member)
            row.status = status
            row.updated_at = utcnow()
            s.flush()
            return to_dict(row)

    def delete_member(self, ctx: RequestContext, image_id: str, member: str) -> None:
        with self.db.write() as s:
            image = self._member_image(s, ctx, image_id)
            if not self._is_owner(ctx, image):
                raise exception.Forbidden(f"Not allowed to delete members for image "
                                          f"{image_id}.")
            authorize(ctx, "delete_member", image_target(ctx, image, member))
            s.delete(self._member_row(s, image_id, member))

    # -- data ----------------------------------------------------------------
    def upload(self, ctx: RequestContext, image_id: str, chunks: Iterable[bytes],
               size_hint: int | None = None) -> dict[str, Any]:
        """Store the image data: queued -> saving -> active.

        On failure the image goes back to queued (and its partial data is
        removed); if it was deleted during the upload, ImageGone (410). Data
        that would take the owner past image_size_total is refused (413):
        before reading when ``size_hint`` (the Content-Length) says so, as
        soon as the stream passes what is left, and finally when the image
        becomes active, under the owner's quota lock, so concurrent uploads
        cannot together pass the limit.
        """
        with self.db.write() as s:
            image = self._get_writable(s, ctx, image_id, "upload_image")
            if image.status != "queued":
                raise exception.Conflict(f"Image status transition from {image.status} to "
                                         f"saving is not allowed")
            if not image.disk_format or not image.container_format:
                raise exception.Invalid("Properties disk_format, container_format must be "
                                        "set prior to saving data.")
            owner, disk_format = image.owner, image.disk_format
            limits = self._limits(s, owner)
            stored = 0
            if limits is not None and owner is not None:
                stored = db_quotas.image_bytes(s, owner, exclude=image_id)
                if size_hint is not None:
                    quota.check_image_size(owner, limits, stored, size_hint)
            if not self._swap_status(s, image_id, "queued", "saving"):
                raise exception.Conflict("Image status transition from queued to saving "
                                         "is not allowed")
        if self.max_image_size is not None:
            chunks = _capped(chunks, self.max_image_size, ImageTooLarge)
        if limits is not None and owner is not None:
            left = quota.image_bytes_left(limits, stored)
            if left is not None:
                chunks = _capped(chunks, left, functools.partial(
                    quota.image_size_exceeded, owner, limits, stored, left + 1))
        try:
            data = self.store.write(image_id, chunks)
            activated = self._activate(image_id, owner, disk_format, data)
        except BaseException:
            with self.db.write() as s:
                self._swap_status(s, image_id, "saving", "queued")
            self.store.delete(image_id)
            raise
        if activated is None:
            self.store.delete(image_id)
            raise ImageGone(image_id=image_id)
        return activated

    def _activate(self, image_id: str, owner: str | None, disk_format: str | None,
                  data: StoredData) -> dict[str, Any] | None:
        """saving -> active with the data's size and hashes (None if the image
        was deleted meanwhile), after checking image_size_total again under
        the owner's lock."""
        with db_quotas.locked_write(self.db, self._quota_lock(owner)) as s:
            limits = self._limits(s, owner)
            if limits is not None and owner is not None:
                quota.check_image_size(owner, limits,
                                       db_quotas.image_bytes(s, owner, exclude=image_id),
                                       data.size)
            done = s.execute(
                update(Image).where(Image.id == image_id, Image.status == "saving",
                                    Image.deleted == false())
                .values(status="active", size=data.size, checksum=data.checksum,
                        os_hash_algo=data.os_hash_algo, os_hash_value=data.os_hash_value,
                        virtual_size=virtual_size(disk_format, data), updated_at=utcnow()))
            if done.rowcount != 1:
                return None
            return to_dict(s.get(Image, image_id, populate_existing=True))

    def open_data(self, ctx: RequestContext, image_id: str, start: int = 0,
                  length: int | None = None) -> tuple[dict[str, Any], Iterator[bytes]]:
        """The record and a chunk iterator over its data (or a byte range of it).

        ImageNoData (204) while the image has no data; Forbidden for a
        deactivated image unless admin.
        """
        record = self.show(ctx, image_id)
        authorize(ctx, "download_image", image_target(ctx, record))
        if record["status"] == "deactivated" and not ctx.is_admin:
            raise exception.Forbidden("The requested image has been deactivated. Image data "
                                      "download is forbidden.")
        if record["status"] not in ("active", "deactivated"):
            raise ImageNoData(image_id=image_id)
        return record, self.store.iter_data(image_id, start, length)

    def _swap_status(self, s: Session, image_id: str, old: str, new: str) -> bool:
        result = s.execute(update(Image).where(Image.id == image_id, Image.status == old,
                                               Image.deleted == false())
                           .values(status=new, updated_at=utcnow()))
        return result.rowcount == 1


def _capped(chunks: Iterable[bytes], limit: int,
            error: Callable[[], BaseException]) -> Iterator[bytes]:
    """``chunks``, raising ``error()`` (a 413) as soon as they pass ``limit`` bytes."""
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise error()
        yield chunk


def _after(sort: list[tuple[str, str]], marker: dict[str, Any]) -> Any:
    """Rows strictly after ``marker`` in ``sort`` order (keyset condition)."""
    clauses = []
    for i, (key, direction) in enumerate(sort):
        equal = [_sort_column(k) == _sort_value(marker, k) for k, _ in sort[:i]]
        column, value = _sort_column(key), _sort_value(marker, key)
        beyond = column > value if direction == "asc" else column < value
        clauses.append(and_(*equal, beyond))
    return or_(*clauses)


def _matches_extra(record: dict[str, Any], query: ListQuery) -> bool:
    tags = record.get("tags") or []
    if any(tag not in tags for tag in query.tags):
        return False
    props = record.get("properties") or {}
    return all(props.get(k) == v for k, v in query.properties.items())


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _writable_values(record: dict[str, Any]) -> dict[str, Any]:
    values = {k: record[k] for k in schemas.WRITABLE}
    values["tags"] = list(record.get("tags") or [])
    values.update(record.get("properties") or {})
    return values


def _apply(values: dict[str, Any], change: PatchOp) -> None:
    name = change.name
    schemas.check_writable_names([name])
    if change.op == "remove":
        if name in schemas.WRITABLE:
            raise exception.Forbidden(f"Properties {name} cannot be removed: it is a base "
                                      f"attribute.")
        if name not in values:
            raise exception.Conflict(f"Property {name} does not exist.")
        del values[name]
    elif change.op == "replace":
        if name not in values:
            raise exception.Conflict(f"Property {name} does not exist.")
        values[name] = change.value
    elif change.op == "add":
        values[name] = change.value
    else:
        raise exception.Invalid(f"Invalid operation: `{change.op}`.")


def image_meta(record: dict[str, Any]) -> dict[str, Any]:
    """Nova's image-meta dict: attributes top-level, extra properties under ``properties``."""
    return {
        "id": record["id"], "name": record["name"], "status": record["status"],
        "visibility": record["visibility"], "owner": record["owner"],
        "size": record["size"], "virtual_size": record["virtual_size"],
        "min_disk": record["min_disk"] or 0, "min_ram": record["min_ram"] or 0,
        "disk_format": record["disk_format"], "container_format": record["container_format"],
        "checksum": record["checksum"], "os_hash_algo": record["os_hash_algo"],
        "os_hash_value": record["os_hash_value"], "protected": record["protected"],
        "os_hidden": record["os_hidden"], "tags": list(record["tags"] or []),
        "created_at": record["created_at"], "updated_at": record["updated_at"],
        "deleted": record["deleted"], "properties": dict(record["properties"] or {}),
    }


def parse_time_filter(raw: str) -> tuple[str, datetime.datetime]:
    """``gt:2026-01-01T00:00:00Z`` -> ("gt", datetime); a bare time means eq."""
    op, _, value = raw.partition(":")
    if op not in TIME_OPS or not value:
        op, value = "eq", raw
    try:
        return op, parse_isotime(value)
    except ValueError:
        raise exception.Invalid(f"Invalid time format for {raw}.")
