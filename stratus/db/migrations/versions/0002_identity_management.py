"""identity management (issue 3): domains, groups, grants, application credentials

Adds the ``domains`` table (with the ``default`` domain), groups and their
members, ``role_grants`` (group roles and domain roles), application
credentials, the ``identity_state`` change counter (one row) and a
``token_generation`` column on users and projects.

Revision ID: 0002_identity
Revises: 0001

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0002_identity'
down_revision = '0001'
branch_labels = None
depends_on = None

_TS = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(
    mysql.DATETIME(fsp=6), 'mysql')


def upgrade() -> None:
    domains = op.create_table(
        'domains',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('token_generation', sa.Integer(), server_default='0', nullable=False),
        sa.Column('created_at', _TS, nullable=False),
        sa.Column('updated_at', _TS, nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name', name='uniq_domains0name'),
    )
    op.create_table(
        'identity_groups',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('domain_id', sa.String(length=64), nullable=False),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('created_at', _TS, nullable=False),
        sa.Column('updated_at', _TS, nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('domain_id', 'name', name='uniq_identity_groups0domain0name'),
    )
    op.create_table(
        'user_group_memberships',
        sa.Column('user_id', sa.String(length=64), nullable=False),
        sa.Column('group_id', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['group_id'], ['identity_groups.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id', 'group_id'),
    )
    with op.batch_alter_table('user_group_memberships', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_group_memberships_group_id'), ['group_id'],
                              unique=False)
    op.create_table(
        'role_grants',
        sa.Column('type', sa.String(length=16), nullable=False),
        sa.Column('actor_id', sa.String(length=64), nullable=False),
        sa.Column('target_id', sa.String(length=64), nullable=False),
        sa.Column('role_id', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['role_id'], ['roles.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('type', 'actor_id', 'target_id', 'role_id'),
    )
    with op.batch_alter_table('role_grants', schema=None) as batch_op:
        batch_op.create_index('role_grants_actor_idx', ['actor_id'], unique=False)
        batch_op.create_index('role_grants_target_idx', ['target_id'], unique=False)
    op.create_table(
        'application_credentials',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('user_id', sa.String(length=64), nullable=False),
        sa.Column('project_id', sa.String(length=64), nullable=False),
        sa.Column('secret_hash', sa.String(length=255), nullable=False),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('expires_at', _TS, nullable=True),
        sa.Column('unrestricted', sa.Boolean(), nullable=False),
        sa.Column('role_ids', sa.JSON(), nullable=False),
        sa.Column('created_at', _TS, nullable=False),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('user_id', 'name', name='uniq_application_credentials0user0name'),
    )
    with op.batch_alter_table('application_credentials', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_application_credentials_project_id'),
                              ['project_id'], unique=False)
    state = op.create_table(
        'identity_state',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('generation', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token_generation', sa.Integer(), server_default='0',
                                      nullable=False))
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token_generation', sa.Integer(), server_default='0',
                                      nullable=False))

    import datetime
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    op.bulk_insert(domains, [{'id': 'default', 'name': 'Default',
                              'description': 'The default domain', 'enabled': True,
                              'token_generation': 0, 'created_at': now}])
    op.bulk_insert(state, [{'id': 1, 'generation': 0}])


def downgrade() -> None:
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_column('token_generation')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('token_generation')
    # Dropping a table drops its indexes (MariaDB refuses to drop an index a
    # foreign key needs on its own).
    for table in ('identity_state', 'application_credentials', 'role_grants',
                  'user_group_memberships', 'identity_groups', 'domains'):
        op.drop_table(table)
