"""SQLAlchemy models: the one shared database of a Stratus deployment.

Shapes follow Nova's where the API exposes them (vm_state/task_state/
power_state, instance faults, instance actions and events), plus the few
identity and image tables the embedded Identity v3 and Image v2 APIs need,
and ``allocations``: the resources the scheduler claimed for each instance on
a compute node (what Placement does for Nova). Timestamps are naive UTC.
"""
from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index,
                        Integer, String, Text, UniqueConstraint)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from stratus.utils import utcnow


# Microsecond precision everywhere (MariaDB's DATETIME drops it by default).
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


class Base(DeclarativeBase):
    pass


class TimestampMixin:
    created_at: Mapped[datetime.datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime.datetime | None] = mapped_column(Timestamp, onupdate=utcnow)


# -- services and capacity ---------------------------------------------------

class Service(TimestampMixin, Base):
    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("host", "binary", name="uniq_services0host0binary"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    host: Mapped[str] = mapped_column(String(255))
    binary: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str | None] = mapped_column(String(255))
    report_count: Mapped[int] = mapped_column(Integer, default=0)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_reason: Mapped[str | None] = mapped_column(String(255))
    forced_down: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen_up: Mapped[datetime.datetime | None] = mapped_column(Timestamp)
    availability_zone: Mapped[str | None] = mapped_column(String(255))


class ComputeNode(TimestampMixin, Base):
    __tablename__ = "compute_nodes"
    __table_args__ = (UniqueConstraint("host", "hypervisor_hostname",
                                       name="uniq_compute_nodes0host0hypervisor_hostname"),
                      # The scheduler reads the nodes that changed since its last look.
                      Index("compute_nodes_updated_at_idx", "updated_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    host: Mapped[str] = mapped_column(String(255), index=True)
    hypervisor_hostname: Mapped[str] = mapped_column(String(255))
    hypervisor_type: Mapped[str] = mapped_column(String(255), default="fake")
    hypervisor_version: Mapped[int] = mapped_column(Integer, default=1000)
    host_ip: Mapped[str | None] = mapped_column(String(64))
    cpu_info: Mapped[str] = mapped_column(Text, default="{}")
    vcpus: Mapped[int] = mapped_column(Integer, default=0)
    memory_mb: Mapped[int] = mapped_column(Integer, default=0)
    local_gb: Mapped[int] = mapped_column(Integer, default=0)
    vcpus_used: Mapped[int] = mapped_column(Integer, default=0)
    memory_mb_used: Mapped[int] = mapped_column(Integer, default=0)
    local_gb_used: Mapped[int] = mapped_column(Integer, default=0)
    running_vms: Mapped[int] = mapped_column(Integer, default=0)
    cpu_allocation_ratio: Mapped[float] = mapped_column(Float, default=4.0)
    ram_allocation_ratio: Mapped[float] = mapped_column(Float, default=1.0)
    disk_allocation_ratio: Mapped[float] = mapped_column(Float, default=1.0)
    reserved_memory_mb: Mapped[int] = mapped_column(Integer, default=0)
    reserved_disk_mb: Mapped[int] = mapped_column(Integer, default=0)
    # Issue 5: CPUs kept back for the host; what the node can run
    # ([[arch, hypervisor_type, vm_mode], ...]) and its free-form capabilities.
    reserved_vcpus: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    supported_instances: Mapped[list[Any] | None] = mapped_column(JSON)
    stats: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Bumped by every claim: two schedulers racing for the same node cannot
    # both win (compare-and-swap, as Placement's resource provider generation).
    generation: Mapped[int] = mapped_column(Integer, default=0)


class Allocation(Base):
    __tablename__ = "allocations"
    __table_args__ = (UniqueConstraint("consumer_uuid", "compute_node_id",
                                       name="uniq_allocations0consumer0node"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consumer_uuid: Mapped[str] = mapped_column(String(36), index=True)
    compute_node_id: Mapped[int] = mapped_column(ForeignKey("compute_nodes.id"), index=True)
    vcpus: Mapped[int] = mapped_column(Integer, default=0)
    memory_mb: Mapped[int] = mapped_column(Integer, default=0)
    disk_gb: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime.datetime] = mapped_column(Timestamp, default=utcnow)


class Migration(TimestampMixin, Base):
    """A resize or cold migration (Nova's ``migrations``): ``uuid`` is also the
    consumer of the destination's allocation until confirm/revert."""
    __tablename__ = "migrations"
    __table_args__ = (Index("migrations_instance_uuid_status_idx", "instance_uuid", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    instance_uuid: Mapped[str] = mapped_column(String(36))
    source_compute: Mapped[str | None] = mapped_column(String(255))
    dest_compute: Mapped[str | None] = mapped_column(String(255))
    source_node: Mapped[str | None] = mapped_column(String(255))
    dest_node: Mapped[str | None] = mapped_column(String(255))
    old_flavor: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    new_flavor: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    old_vm_state: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str | None] = mapped_column(String(255))
    migration_type: Mapped[str | None] = mapped_column(String(16))


# -- host aggregates and server groups (issue 5) --------------------------------

class Aggregate(TimestampMixin, Base):
    """A host aggregate; ``updated_at`` moves with any change of its hosts or
    metadata, so the scheduler knows when to re-read aggregates."""

    __tablename__ = "aggregates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)

    hosts: Mapped[list["AggregateHost"]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="AggregateHost.id")
    metadata_items: Mapped[list["AggregateMetadata"]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="AggregateMetadata.id")


class AggregateHost(Base):
    __tablename__ = "aggregate_hosts"
    __table_args__ = (UniqueConstraint("host", "aggregate_id",
                                       name="uniq_aggregate_hosts0host0aggregate_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    aggregate_id: Mapped[int] = mapped_column(ForeignKey("aggregates.id", ondelete="CASCADE"),
                                              index=True)


class AggregateMetadata(Base):
    __tablename__ = "aggregate_metadata"
    __table_args__ = (UniqueConstraint("aggregate_id", "key",
                                       name="uniq_aggregate_metadata0aggregate_id0key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    aggregate_id: Mapped[int] = mapped_column(ForeignKey("aggregates.id", ondelete="CASCADE"),
                                              index=True)
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))


class InstanceGroup(TimestampMixin, Base):
    """A server group: ``policy`` is affinity, anti-affinity, soft-affinity or
    soft-anti-affinity; ``rules`` holds max_server_per_host (microversion 2.64)."""

    __tablename__ = "instance_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(255), index=True)
    policy: Mapped[str] = mapped_column(String(255))
    rules: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    members: Mapped[list["InstanceGroupMember"]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="InstanceGroupMember.id")


class InstanceGroupMember(Base):
    __tablename__ = "instance_group_members"
    __table_args__ = (UniqueConstraint("group_id", "instance_uuid",
                                       name="uniq_instance_group_members0group0instance"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("instance_groups.id", ondelete="CASCADE"))
    instance_uuid: Mapped[str] = mapped_column(String(36), index=True)


# -- flavors -----------------------------------------------------------------

class Flavor(TimestampMixin, Base):
    __tablename__ = "flavors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flavorid: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    memory_mb: Mapped[int] = mapped_column(Integer)
    vcpus: Mapped[int] = mapped_column(Integer)
    root_gb: Mapped[int] = mapped_column(Integer, default=0)
    ephemeral_gb: Mapped[int] = mapped_column(Integer, default=0)
    swap: Mapped[int] = mapped_column(Integer, default=0)
    rxtx_factor: Mapped[float] = mapped_column(Float, default=1.0)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str | None] = mapped_column(Text)

    extra_specs: Mapped[list["FlavorExtraSpec"]] = relationship(
        back_populates="flavor", cascade="all, delete-orphan", lazy="selectin")
    projects: Mapped[list["FlavorProject"]] = relationship(
        back_populates="flavor", cascade="all, delete-orphan", lazy="selectin")


class FlavorExtraSpec(Base):
    __tablename__ = "flavor_extra_specs"
    __table_args__ = (UniqueConstraint("flavor_id", "key", name="uniq_flavor_extra_specs0flavor0key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flavor_id: Mapped[int] = mapped_column(ForeignKey("flavors.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))
    flavor: Mapped[Flavor] = relationship(back_populates="extra_specs")


class FlavorProject(Base):
    __tablename__ = "flavor_projects"
    __table_args__ = (UniqueConstraint("flavor_id", "project_id",
                                       name="uniq_flavor_projects0flavor0project"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flavor_id: Mapped[int] = mapped_column(ForeignKey("flavors.id", ondelete="CASCADE"))
    project_id: Mapped[str] = mapped_column(String(255))
    flavor: Mapped[Flavor] = relationship(back_populates="projects")


# -- instances ---------------------------------------------------------------

class Instance(TimestampMixin, Base):
    __tablename__ = "instances"
    __table_args__ = (
        Index("instances_project_id_deleted_idx", "project_id", "deleted"),
        Index("instances_host_deleted_idx", "host", "deleted"),
        Index("instances_updated_at_idx", "updated_at"),
        Index("instances_created_at_id_idx", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    user_id: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(255))
    display_description: Mapped[str | None] = mapped_column(Text)
    hostname: Mapped[str | None] = mapped_column(String(255))
    host: Mapped[str | None] = mapped_column(String(255))
    node: Mapped[str | None] = mapped_column(String(255))
    launched_on: Mapped[str | None] = mapped_column(String(255))
    availability_zone: Mapped[str | None] = mapped_column(String(255))
    image_ref: Mapped[str | None] = mapped_column(String(255))
    flavor: Mapped[dict[str, Any]] = mapped_column(JSON)
    vcpus: Mapped[int] = mapped_column(Integer, default=0)
    memory_mb: Mapped[int] = mapped_column(Integer, default=0)
    root_gb: Mapped[int] = mapped_column(Integer, default=0)
    ephemeral_gb: Mapped[int] = mapped_column(Integer, default=0)
    vm_state: Mapped[str | None] = mapped_column(String(255))
    task_state: Mapped[str | None] = mapped_column(String(255))
    power_state: Mapped[int] = mapped_column(Integer, default=0)
    key_name: Mapped[str | None] = mapped_column(String(255))
    key_data: Mapped[str | None] = mapped_column(Text)
    user_data: Mapped[str | None] = mapped_column(Text)
    config_drive: Mapped[str | None] = mapped_column(String(255))
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    locked_by: Mapped[str | None] = mapped_column(String(16))
    # 2.73: why the server is locked (Nova keeps it in system metadata).
    locked_reason: Mapped[str | None] = mapped_column(String(255))
    reservation_id: Mapped[str | None] = mapped_column(String(255))
    launch_index: Mapped[int] = mapped_column(Integer, default=0)
    # Shown from microversion 2.3 (OS-EXT-SRV-ATTR:*): the image's kernel and
    # ramdisk ("" for none) and the guest's root disk, set by the compute host.
    kernel_id: Mapped[str | None] = mapped_column(String(255))
    ramdisk_id: Mapped[str | None] = mapped_column(String(255))
    root_device_name: Mapped[str | None] = mapped_column(String(255))
    access_ip_v4: Mapped[str | None] = mapped_column(String(39))
    access_ip_v6: Mapped[str | None] = mapped_column(String(39))
    auto_disk_config: Mapped[bool] = mapped_column(Boolean, default=False)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    launched_at: Mapped[datetime.datetime | None] = mapped_column(Timestamp)
    terminated_at: Mapped[datetime.datetime | None] = mapped_column(Timestamp)
    deleted_at: Mapped[datetime.datetime | None] = mapped_column(Timestamp)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    # Scheduling request (flavor, image, AZ, retries) kept for reschedules.
    request_spec: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Microversion 2.63: the image certificate ids the guest's image must be
    # signed with (None: none asked for).
    trusted_certs: Mapped[list[str] | None] = mapped_column(JSON)

    metadata_items: Mapped[list["InstanceMetadata"]] = relationship(
        back_populates="instance", cascade="all, delete-orphan", lazy="selectin")


class InstanceMetadata(Base):
    __tablename__ = "instance_metadata"
    __table_args__ = (UniqueConstraint("instance_uuid", "key", name="uniq_instance_metadata0uuid0key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_uuid: Mapped[str] = mapped_column(
        ForeignKey("instances.uuid", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))
    instance: Mapped[Instance] = relationship(back_populates="metadata_items")


class Tag(Base):
    """A server tag (microversion 2.26), as Nova's ``tags`` table: no foreign
    key; an instance's tags go when it is deleted (db.tags)."""

    __tablename__ = "tags"
    __table_args__ = (Index("tags_tag_idx", "tag"),)

    resource_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tag: Mapped[str] = mapped_column(String(80), primary_key=True)


class InstanceFault(Base):
    __tablename__ = "instance_faults"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_uuid: Mapped[str] = mapped_column(String(36), index=True)
    code: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(String(255))
    details: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime.datetime] = mapped_column(Timestamp, default=utcnow)


class InstanceAction(TimestampMixin, Base):
    __tablename__ = "instance_actions"
    __table_args__ = (Index("instance_actions_uuid_request_idx", "instance_uuid", "request_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action: Mapped[str] = mapped_column(String(255))
    instance_uuid: Mapped[str] = mapped_column(String(36))
    request_id: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(255))
    start_time: Mapped[datetime.datetime] = mapped_column(Timestamp, default=utcnow)
    finish_time: Mapped[datetime.datetime | None] = mapped_column(Timestamp)
    message: Mapped[str | None] = mapped_column(String(255))

    events: Mapped[list["InstanceActionEvent"]] = relationship(
        back_populates="action_ref", cascade="all, delete-orphan", lazy="selectin",
        order_by="InstanceActionEvent.id")


class InstanceActionEvent(TimestampMixin, Base):
    __tablename__ = "instance_actions_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("instance_actions.id", ondelete="CASCADE"),
                                           index=True)
    event: Mapped[str] = mapped_column(String(255))
    start_time: Mapped[datetime.datetime] = mapped_column(Timestamp, default=utcnow)
    finish_time: Mapped[datetime.datetime | None] = mapped_column(Timestamp)
    result: Mapped[str | None] = mapped_column(String(255))
    traceback: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(255))
    details: Mapped[str | None] = mapped_column(Text)
    action_ref: Mapped[InstanceAction] = relationship(back_populates="events")


class KeyPair(Base):
    __tablename__ = "key_pairs"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uniq_key_pairs0user_id0name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(255))
    public_key: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(16), default="ssh")
    created_at: Mapped[datetime.datetime] = mapped_column(Timestamp, default=utcnow)


# -- identity ----------------------------------------------------------------

class Project(TimestampMixin, Base):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("domain_id", "name", name="uniq_projects0domain0name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    domain_id: Mapped[str] = mapped_column(String(64), default="default")
    description: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped when the project is disabled: its tokens stay dead if re-enabled (issue 3).
    token_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class User(TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("domain_id", "name", name="uniq_users0domain0name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    domain_id: Mapped[str] = mapped_column(String(64), default="default")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    default_project_id: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(255))
    # Bumped when the password changes or the user is disabled: tokens carry the
    # value they were issued under, so older tokens stop working (issue 3).
    token_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Role(Base):
    __tablename__ = "roles"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)


class RoleAssignment(Base):
    __tablename__ = "role_assignments"
    __table_args__ = (UniqueConstraint("user_id", "project_id", "role_id",
                                       name="uniq_role_assignments0user0project0role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    role_id: Mapped[str] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"))


class RevokedToken(Base):
    """A token revoked before it expired (``DELETE /v3/auth/tokens``), by audit id."""

    __tablename__ = "revoked_tokens"

    audit_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime.datetime] = mapped_column(Timestamp, index=True)


# -- identity management (issue 3) -------------------------------------------

class Domain(TimestampMixin, Base):
    """A Keystone domain; ``default`` (named ``Default``) is created by the migration."""

    __tablename__ = "domains"
    __table_args__ = (UniqueConstraint("name", name="uniq_domains0name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped when the domain is disabled (its domain-scoped tokens stay dead).
    token_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Group(TimestampMixin, Base):
    """A group of users (``groups`` is reserved in MySQL 8, hence the table name)."""

    __tablename__ = "identity_groups"
    __table_args__ = (UniqueConstraint("domain_id", "name",
                                       name="uniq_identity_groups0domain0name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    domain_id: Mapped[str] = mapped_column(String(64), default="default")
    description: Mapped[str | None] = mapped_column(Text)


class UserGroupMembership(Base):
    __tablename__ = "user_group_memberships"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("identity_groups.id", ondelete="CASCADE"),
                                          primary_key=True, index=True)


class RoleGrant(Base):
    """Role assignments other than user-on-project (those are ``role_assignments``).

    ``type`` is Keystone's: ``GroupProject``, ``UserDomain`` or ``GroupDomain``;
    actor and target ids are not foreign keys (they name different tables), so
    deleting a group, user, project or domain deletes its grants explicitly.
    """

    __tablename__ = "role_grants"
    __table_args__ = (Index("role_grants_target_idx", "target_id"),
                      Index("role_grants_actor_idx", "actor_id"))

    type: Mapped[str] = mapped_column(String(16), primary_key=True)
    actor_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    target_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    role_id: Mapped[str] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"),
                                         primary_key=True)


class ApplicationCredential(Base):
    """A user's delegation of (some of) its roles on one project; the secret is hashed."""

    __tablename__ = "application_credentials"
    __table_args__ = (UniqueConstraint("user_id", "name",
                                       name="uniq_application_credentials0user0name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"),
                                            index=True)
    secret_hash: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime.datetime | None] = mapped_column(Timestamp)
    unrestricted: Mapped[bool] = mapped_column(Boolean, default=False)
    role_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime.datetime] = mapped_column(Timestamp, default=utcnow)


class IdentityState(Base):
    """One row (id 1): a counter bumped by every identity write in its transaction.

    API processes read it on each authenticated request and drop their cached
    token validations when it moved (see stratus.identity.auth).
    """

    __tablename__ = "identity_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)


# -- images ------------------------------------------------------------------

class Image(TimestampMixin, Base):
    __tablename__ = "images"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(30), default="queued")
    visibility: Mapped[str] = mapped_column(String(20), default="shared")
    owner: Mapped[str | None] = mapped_column(String(255), index=True)
    disk_format: Mapped[str | None] = mapped_column(String(20))
    container_format: Mapped[str | None] = mapped_column(String(20))
    size: Mapped[int | None] = mapped_column(BigInteger)
    virtual_size: Mapped[int | None] = mapped_column(BigInteger)
    checksum: Mapped[str | None] = mapped_column(String(32))
    os_hash_algo: Mapped[str | None] = mapped_column(String(64))
    os_hash_value: Mapped[str | None] = mapped_column(String(128))
    min_disk: Mapped[int] = mapped_column(Integer, default=0)
    min_ram: Mapped[int] = mapped_column(Integer, default=0)
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    os_hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[datetime.datetime | None] = mapped_column(Timestamp)


# -- image members (issue 3) -------------------------------------------------

class ImageMember(TimestampMixin, Base):
    """A project an image of visibility ``shared`` is shared with (Glance's members)."""

    __tablename__ = "image_members"
    __table_args__ = (UniqueConstraint("image_id", "member", name="uniq_image_members0image0member"),
                      Index("image_members_member_status_idx", "member", "status"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"),
                                          index=True)
    member: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), default="pending")


# -- quotas (issue 3) ----------------------------------------------------------

class Quota(TimestampMixin, Base):
    """A project's own limit for one resource (Nova's ``quotas`` table); a
    resource without a row has the ``[quota]`` default."""

    __tablename__ = "quotas"
    __table_args__ = (UniqueConstraint("project_id", "resource",
                                       name="uniq_quotas0project_id0resource"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(String(255))
    resource: Mapped[str] = mapped_column(String(255))
    hard_limit: Mapped[int] = mapped_column(Integer)


class QuotaClass(TimestampMixin, Base):
    """A quota class's limit for one resource (Nova's ``quota_classes``): the
    ``default`` class's rows override the ``[quota]`` defaults
    (os-quota-class-sets)."""

    __tablename__ = "quota_classes"
    __table_args__ = (UniqueConstraint("class_name", "resource",
                                       name="uniq_quota_classes0class_name0resource"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    class_name: Mapped[str] = mapped_column(String(255))
    resource: Mapped[str] = mapped_column(String(255))
    hard_limit: Mapped[int] = mapped_column(Integer)


class QuotaLock(Base):
    """One row per project (or ``user:<id>``) whose quota is checked: every
    transaction that counts usage and then adds to it locks the row first
    (``SELECT ... FOR UPDATE``), so such transactions of one project run one
    at a time on PostgreSQL and MariaDB (SQLite writers are serial anyway)."""

    __tablename__ = "quota_locks"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
