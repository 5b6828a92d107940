"""`scoring_scope` on a hand-made serve snapshot: excluded and unavailable items are blocked
and K shrinks to the showable items, for integer and string item ids."""

from __future__ import annotations

import duckdb
import pytest

from recpipe.tasks.serving.scoring_scope import scoring_scope


@pytest.mark.parametrize(
    ("ids", "exclude"),
    [([1, 2, 3, 4], ("2",)), (["a", "b", "c", "d"], ("b",))],  # a text file gives strings
    ids=["int_ids", "string_ids"],
)
def test_excluded_and_unavailable_items_are_blocked(tmp_path, ids, exclude):
    wh = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(wh)) as con:
        con.execute("create schema serve")
        con.execute("create table serve.user_universe as select range as user_id from range(7)")
        con.execute("create table serve.item_features (item_id varchar, available boolean)")
        kind = "bigint" if isinstance(ids[0], int) else "varchar"
        con.execute(f"alter table serve.item_features alter item_id type {kind}")
        con.executemany(
            "insert into serve.item_features values (?, ?)",
            [[i, n != 3] for n, i in enumerate(ids)],  # the last item is unavailable
        )
    scope = scoring_scope(wh, 3, exclude)
    assert scope.n_users == 7
    assert sorted(scope.blocked_items) == [ids[1], ids[3]]
    assert scope.k == 2  # two showable items left
