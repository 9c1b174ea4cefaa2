"""server tags (microversion 2.26): the ``tags`` table

Revision ID: 0007_server_tags
Revises: 0006_instance_boot_attributes

"""
from alembic import op
import sqlalchemy as sa

revision = '0007_server_tags'
down_revision = '0006_instance_boot_attributes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'tags',
        sa.Column('resource_id', sa.String(length=36), nullable=False),
        sa.Column('tag', sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint('resource_id', 'tag'),
    )
    with op.batch_alter_table('tags', schema=None) as batch_op:
        batch_op.create_index('tags_tag_idx', ['tag'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('tags', schema=None) as batch_op:
        batch_op.drop_index('tags_tag_idx')
    op.drop_table('tags')
