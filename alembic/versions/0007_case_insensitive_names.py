"""Names compared case-insensitively within a folder, through a folded key stored with each
name; names that clash once folded are renamed, and every rename is recorded.

`node.name_key` is NFC(casefold(NFC(name))), computed here in Python as the application
computes it (PostgreSQL's lower() is not Unicode case folding). The unique indexes of a
folder's live children move from `name` to `name_key`.

Two live children of one folder whose names fold equal ("Report.pdf" and "report.pdf") could
not both keep their names under the new index. Nothing is deleted and the migration does not
fail: the oldest keeps its name, each later one is renamed "report (case clash 2).pdf" (the
first free number), and every rename is recorded in `node_name_clash`, in the owner's change
feed as a `moved` change (so synced desktops rename their copy), and in the migration's log.
Renaming rather than leaving them out of the index: a clash left in place is exactly what
Windows and macOS desktops cannot hold, and would have to be excluded by every later check.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import logging
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from uuid import UUID, uuid4

import sqlalchemy as sa

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

logger = logging.getLogger("alembic.runtime.migration")

MAX_NAME_BYTES = 255
BATCH = 5000

OLD_INDEXES = (
    ("uq_node_top_level_name", ["owner_id", "name"], "parent_id IS NULL AND trashed_at IS NULL"),
    ("uq_node_child_name", ["parent_id", "name"], "parent_id IS NOT NULL AND trashed_at IS NULL"),
)
NEW_INDEXES = (
    (
        "uq_node_top_level_name_key",
        ["owner_id", "name_key"],
        "parent_id IS NULL AND trashed_at IS NULL",
    ),
    (
        "uq_node_child_name_key",
        ["parent_id", "name_key"],
        "parent_id IS NOT NULL AND trashed_at IS NULL",
    ),
)

NODE_PATH = sa.text(
    """
    WITH RECURSIVE chain(id, parent_id, name, depth) AS (
        SELECT id, parent_id, name, 0 FROM node WHERE id = :id
        UNION ALL
        SELECT node.id, node.parent_id, node.name, chain.depth + 1
        FROM chain JOIN node ON node.id = chain.parent_id
    )
    SELECT '/' || string_agg(name, '/' ORDER BY depth DESC) FROM chain
    """
)


# Frozen copies of the application's rules as of this revision: a migration must compute
# the same keys whatever later versions of the code say.
def _name_key(name: str) -> str:
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def _clash_name(name: str, kind: str, number: int) -> str:
    stem, extension = name, ""
    dot = name.rfind(".")
    if kind == "file" and dot > 0:
        stem, extension = name[:dot], name[dot:]
    suffix = f" (case clash {number}){extension}"
    while stem and len((stem + suffix).encode()) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return unicodedata.normalize("NFC", stem + suffix)


def _fill_keys(bind: sa.Connection) -> None:
    last: UUID | None = None
    while True:
        query = "SELECT id, name FROM node"
        query += " WHERE id > :last" if last is not None else ""
        rows = bind.execute(
            sa.text(f"{query} ORDER BY id LIMIT {BATCH}"), {"last": last} if last else {}
        ).all()
        if not rows:
            return
        bind.execute(
            sa.text("UPDATE node SET name_key = :key WHERE id = :id"),
            [{"id": row.id, "key": _name_key(row.name)} for row in rows],
        )
        last = rows[-1].id


def _rename_clashes(bind: sa.Connection) -> None:
    # Only the folders holding a clash are read in full.
    clashing = bind.execute(
        sa.text(
            """
            SELECT owner_id, parent_id FROM node WHERE trashed_at IS NULL
            GROUP BY owner_id, parent_id, name_key HAVING count(*) > 1
            """
        )
    ).all()
    for owner_id, parent_id in {(row.owner_id, row.parent_id) for row in clashing}:
        children = bind.execute(
            sa.text(
                """
                SELECT id, kind, name, name_key FROM node
                WHERE owner_id = :owner AND parent_id IS NOT DISTINCT FROM :parent
                  AND trashed_at IS NULL
                ORDER BY created_at, id
                """
            ),
            {"owner": owner_id, "parent": parent_id},
        ).all()
        taken = {row.name_key for row in children}
        holders: dict[str, UUID] = {}
        renames: defaultdict[str, list[tuple[UUID, str, str]]] = defaultdict(list)
        for row in children:
            if row.name_key not in holders:
                holders[row.name_key] = row.id
            else:
                renames[row.name_key].append((row.id, row.kind, row.name))
        for key, later in renames.items():
            number = 2
            for node_id, kind, name in later:
                while _name_key(new_name := _clash_name(name, kind, number)) in taken:
                    number += 1
                taken.add(_name_key(new_name))
                _rename(bind, owner_id, node_id, kind, name, new_name, holders[key])


def _rename(
    bind: sa.Connection,
    owner_id: UUID,
    node_id: UUID,
    kind: str,
    old_name: str,
    new_name: str,
    kept_node_id: UUID,
) -> None:
    bind.execute(
        sa.text("UPDATE node SET name = :name, name_key = :key, updated_at = now() WHERE id = :id"),
        {"id": node_id, "name": new_name, "key": _name_key(new_name)},
    )
    bind.execute(
        sa.text(
            """
            INSERT INTO node_name_clash (id, node_id, owner_id, kept_node_id, old_name, new_name)
            VALUES (:id, :node_id, :owner_id, :kept_node_id, :old_name, :new_name)
            """
        ),
        {
            "id": uuid4(),
            "node_id": node_id,
            "owner_id": owner_id,
            "kept_node_id": kept_node_id,
            "old_name": old_name,
            "new_name": new_name,
        },
    )
    path = bind.scalar(NODE_PATH, {"id": node_id})
    # The owner's desktops learn the rename as any other; a moved folder's subtree moves with
    # it, as the feed says of every move.
    bind.execute(
        sa.text(
            """
            INSERT INTO change (user_id, node_id, change, node_kind, path)
            VALUES (:user_id, :node_id, 'moved', :kind, :path)
            """
        ),
        {"user_id": owner_id, "node_id": node_id, "kind": kind, "path": path},
    )
    logger.warning(
        "names that differ only by case: renamed %s (%s) of account %s from %r to %r; %s keeps "
        "the name",
        kind,
        node_id,
        owner_id,
        old_name,
        new_name,
        kept_node_id,
    )


def upgrade() -> None:
    op.create_table(
        "node_name_clash",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("node_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("kept_node_id", sa.Uuid(), nullable=False),
        sa.Column("old_name", sa.Text(), nullable=False),
        sa.Column("new_name", sa.Text(), nullable=False),
        sa.Column(
            "renamed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["node.id"],
            name=op.f("fk_node_name_clash_node_id_node"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["user_account.id"],
            name=op.f("fk_node_name_clash_owner_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_name_clash")),
    )
    op.create_index(op.f("ix_node_name_clash_node_id"), "node_name_clash", ["node_id"])
    op.create_index(op.f("ix_node_name_clash_owner_id"), "node_name_clash", ["owner_id"])
    op.add_column("node", sa.Column("name_key", sa.Text(), nullable=True))
    bind = op.get_bind()
    _fill_keys(bind)
    _rename_clashes(bind)
    op.alter_column("node", "name_key", nullable=False)
    for name, columns, where in NEW_INDEXES:
        op.create_index(name, "node", columns, unique=True, postgresql_where=sa.text(where))
    for name, _, _ in OLD_INDEXES:
        op.drop_index(name, table_name="node")


def downgrade() -> None:
    # The renames stay: names unique once folded are unique as they are.
    for name, columns, where in OLD_INDEXES:
        op.create_index(name, "node", columns, unique=True, postgresql_where=sa.text(where))
    for name, _, _ in NEW_INDEXES:
        op.drop_index(name, table_name="node")
    op.drop_column("node", "name_key")
    op.drop_index(op.f("ix_node_name_clash_owner_id"), table_name="node_name_clash")
    op.drop_index(op.f("ix_node_name_clash_node_id"), table_name="node_name_clash")
    op.drop_table("node_name_clash")
