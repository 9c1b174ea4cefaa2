"""image members (issue 3): projects a shared image is shared with

Revision ID: 0002_images
Revises: 0001

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0002_images'
down_revision = '0001'
branch_labels = None
depends_on = None

_TS = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(
    mysql.DATETIME(fsp=6), 'mysql')


def upgrade() -> None:
    op.create_table(
        'image_members',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('image_id', sa.String(length=36), nullable=False),
        sa.Column('member', sa.String(length=255), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('created_at', _TS, nullable=False),
        sa.Column('updated_at', _TS, nullable=True),
        sa.ForeignKeyConstraint(['image_id'], ['images.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('image_id', 'member', name='uniq_image_members0image0member'),
    )
    with op.batch_alter_table('image_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_image_members_image_id'), ['image_id'],
                              unique=False)
        batch_op.create_index('image_members_member_status_idx', ['member', 'status'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('image_members', schema=None) as batch_op:
        batch_op.drop_index('image_members_member_status_idx')
        batch_op.drop_index(batch_op.f('ix_image_members_image_id'))
    op.drop_table('image_members')
