"""microversion 2.73: the reason a server is locked (``locked_reason``)

Revision ID: 0009_instance_locked_reason
Revises: 0008_trusted_certs_quota_classes

"""
from alembic import op
import sqlalchemy as sa

revision = '0009_instance_locked_reason'
down_revision = '0008_trusted_certs_quota_classes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locked_reason', sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.drop_column('locked_reason')
