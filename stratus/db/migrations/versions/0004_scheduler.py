"""scheduler (issue 5): capacity columns, host aggregates, server groups

Adds to ``compute_nodes`` the CPUs reserved for the host, the instance types
the node supports, its free-form capabilities (``stats``) and an index on
``updated_at`` (the scheduler reads the nodes changed since its last look);
creates ``aggregates`` (+ hosts, metadata) and ``instance_groups`` (+ members).

Revision ID: 0004_scheduler
Revises: 0003_quotas

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0004_scheduler'
down_revision = '0003_quotas'
branch_labels = None
depends_on = None

_TS = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(
    mysql.DATETIME(fsp=6), 'mysql')


def upgrade() -> None:
    with op.batch_alter_table('compute_nodes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reserved_vcpus', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('supported_instances', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('stats', sa.JSON(), nullable=True))
        batch_op.create_index('compute_nodes_updated_at_idx', ['updated_at'], unique=False)

    op.create_table(
        'aggregates',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('uuid', sa.String(length=36), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('created_at', _TS, nullable=False),
        sa.Column('updated_at', _TS, nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'),
        sa.UniqueConstraint('uuid'),
    )
    op.create_table(
        'aggregate_hosts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('aggregate_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['aggregate_id'], ['aggregates.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('host', 'aggregate_id',
                            name='uniq_aggregate_hosts0host0aggregate_id'),
    )
    with op.batch_alter_table('aggregate_hosts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_aggregate_hosts_aggregate_id'), ['aggregate_id'],
                              unique=False)
    op.create_table(
        'aggregate_metadata',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('aggregate_id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('value', sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(['aggregate_id'], ['aggregates.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('aggregate_id', 'key',
                            name='uniq_aggregate_metadata0aggregate_id0key'),
    )
    with op.batch_alter_table('aggregate_metadata', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_aggregate_metadata_aggregate_id'),
                              ['aggregate_id'], unique=False)
    op.create_table(
        'instance_groups',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('uuid', sa.String(length=36), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('user_id', sa.String(length=255), nullable=True),
        sa.Column('project_id', sa.String(length=255), nullable=True),
        sa.Column('policy', sa.String(length=255), nullable=False),
        sa.Column('rules', sa.JSON(), nullable=True),
        sa.Column('created_at', _TS, nullable=False),
        sa.Column('updated_at', _TS, nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('uuid'),
    )
    with op.batch_alter_table('instance_groups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_instance_groups_project_id'), ['project_id'],
                              unique=False)
    op.create_table(
        'instance_group_members',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('group_id', sa.Integer(), nullable=False),
        sa.Column('instance_uuid', sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(['group_id'], ['instance_groups.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('group_id', 'instance_uuid',
                            name='uniq_instance_group_members0group0instance'),
    )
    with op.batch_alter_table('instance_group_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_instance_group_members_instance_uuid'),
                              ['instance_uuid'], unique=False)


def downgrade() -> None:
    op.drop_table('instance_group_members')
    op.drop_table('instance_groups')
    op.drop_table('aggregate_metadata')
    op.drop_table('aggregate_hosts')
    op.drop_table('aggregates')
    with op.batch_alter_table('compute_nodes', schema=None) as batch_op:
        batch_op.drop_index('compute_nodes_updated_at_idx')
        batch_op.drop_column('stats')
        batch_op.drop_column('supported_instances')
        batch_op.drop_column('reserved_vcpus')
