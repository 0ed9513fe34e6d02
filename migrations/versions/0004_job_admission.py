"""A one-row table that serialises job admissions, so the active-job limit holds under a burst.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 09:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "job_admission",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("admitted", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(table, [{"id": 1, "admitted": 0}])


def downgrade() -> None:
    op.drop_table("job_admission")
