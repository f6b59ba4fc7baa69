"""page cache: participant data_version and the change counters

Revision ID: c3d5e7f90a12
Revises: b9a99818f2dc
Create Date: 2026-12-06 07:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c3d5e7f90a12'
down_revision = 'b9a99818f2dc'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('change_counter',
    sa.Column('name', sa.String(length=20), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_change_counter'))
    )
    with op.batch_alter_table('participant', schema=None) as batch_op:
        batch_op.add_column(sa.Column('data_version', sa.BigInteger(), server_default='0',
                                      nullable=False))


def downgrade():
    with op.batch_alter_table('participant', schema=None) as batch_op:
        batch_op.drop_column('data_version')
    op.drop_table('change_counter')
