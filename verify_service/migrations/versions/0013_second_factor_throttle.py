"""second-factor throttle

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

Wrong two-step codes now count on a throttle key of their own kind
(``second_factor``), which a right password never clears: the kind's CHECK
constraint takes the new value.
"""

from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

CONSTRAINT = "ck_staff_sign_in_throttles_sign_in_throttle_kind"
OLD = ("account", "ip")
NEW = ("account", "ip", "second_factor")


def _kind(values: tuple[str, ...], *, constraint: bool) -> sa.Enum:
    return sa.Enum(*values, name="sign_in_throttle_kind", native_enum=False, create_constraint=constraint, length=32)


def _change(old: tuple[str, ...], new: tuple[str, ...]) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f(CONSTRAINT), "staff_sign_in_throttles", type_="check")
        op.create_check_constraint(op.f(CONSTRAINT), "staff_sign_in_throttles",
                                   "kind IN (" + ", ".join(f"'{v}'" for v in new) + ")")
        return
    # SQLite keeps CHECK constraints in the table's DDL: the table is rebuilt with the new one.
    with op.batch_alter_table("staff_sign_in_throttles", recreate="always") as batch_op:
        batch_op.alter_column("kind", existing_type=_kind(old, constraint=False), type_=_kind(new, constraint=True),
                              existing_nullable=False)


def upgrade() -> None:
    _change(OLD, NEW)


def downgrade() -> None:
    op.execute("DELETE FROM staff_sign_in_throttles WHERE kind = 'second_factor'")
    _change(NEW, OLD)
