"""microversion 2.3: the instance's kernel_id, ramdisk_id and root_device_name

Revision ID: 0006_instance_boot_attributes
Revises: 0005_migrations

"""
from alembic import op
import sqlalchemy as sa

revision = '0006_instance_boot_attributes'
down_revision = '0005_migrations'
branch_labels = None
depends_on = None

_COLUMNS = ('kernel_id', 'ramdisk_id', 'root_device_name')


def upgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        for name in _COLUMNS:
            batch_op.add_column(sa.Column(name, sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        for name in reversed(_COLUMNS):
            batch_op.drop_column(name)
