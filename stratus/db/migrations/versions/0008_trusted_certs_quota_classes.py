"""microversions 2.50-2.63: the instance's trusted image certificates (2.63)
and the ``quota_classes`` table behind os-quota-class-sets (2.50/2.57)

Revision ID: 0008_trusted_certs_quota_classes
Revises: 0007_server_tags

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0008_trusted_certs_quota_classes'
down_revision = '0007_server_tags'
branch_labels = None
depends_on = None

_TS = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(
    mysql.DATETIME(fsp=6), 'mysql')


def upgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trusted_certs', sa.JSON(), nullable=True))
    op.create_table(
        'quota_classes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('created_at', _TS, nullable=False),
        sa.Column('updated_at', _TS, nullable=True),
        sa.Column('class_name', sa.String(length=255), nullable=False),
        sa.Column('resource', sa.String(length=255), nullable=False),
        sa.Column('hard_limit', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('class_name', 'resource',
                            name='uniq_quota_classes0class_name0resource'),
    )


def downgrade() -> None:
    op.drop_table('quota_classes')
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.drop_column('trusted_certs')
