"""resize and cold migrate (issue 4): the ``migrations`` table

Revision ID: 0005_migrations
Revises: 0004_scheduler

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0005_migrations'
down_revision = '0004_scheduler'
branch_labels = None
depends_on = None

_TS = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(
    mysql.DATETIME(fsp=6), 'mysql')


def upgrade() -> None:
    op.create_table(
        'migrations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('uuid', sa.String(length=36), nullable=False),
        sa.Column('instance_uuid', sa.String(length=36), nullable=False),
        sa.Column('source_compute', sa.String(length=255), nullable=True),
        sa.Column('dest_compute', sa.String(length=255), nullable=True),
        sa.Column('source_node', sa.String(length=255), nullable=True),
        sa.Column('dest_node', sa.String(length=255), nullable=True),
        sa.Column('old_flavor', sa.JSON(), nullable=True),
        sa.Column('new_flavor', sa.JSON(), nullable=True),
        sa.Column('old_vm_state', sa.String(length=255), nullable=True),
        sa.Column('status', sa.String(length=255), nullable=True),
        sa.Column('migration_type', sa.String(length=16), nullable=True),
        sa.Column('created_at', _TS, nullable=False),
        sa.Column('updated_at', _TS, nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('uuid'),
    )
    with op.batch_alter_table('migrations', schema=None) as batch_op:
        batch_op.create_index('migrations_instance_uuid_status_idx',
                              ['instance_uuid', 'status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('migrations', schema=None) as batch_op:
        batch_op.drop_index('migrations_instance_uuid_status_idx')
    op.drop_table('migrations')
