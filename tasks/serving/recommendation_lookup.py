"""Reading the published table: one user's list with item categories."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from recpipe.errors import NoDataError
from recpipe.tasks.ingest import event_lake
from recpipe.tasks.serving.recommendation_publishing import (
    DEFAULT_LIST_FILE,
    current_version,
    version_files,
)


def user_list(
    recs_dir: Path, lake_dir: Path, user_id: str
) -> tuple[str | None, pd.DataFrame, bool]:
    """(current version, that user's rows with category, whether they are the version's
    default list): a user the table does not hold gets the list for new users and guests
    (`default-list.parquet`), or an empty frame for a version written without one."""
    version = current_version(recs_dir)
    if version is None:
        raise NoDataError(f"{recs_dir}: nothing published yet; run `recpipe recommend`")
    con = duckdb.connect()
    con.read_parquet(version_files(recs_dir, version), hive_partitioning=False).create_view("recs")
    items = event_lake.lake_paths(lake_dir, "items")
    if items:
        con.read_parquet(items).create_view("catalog")
    else:
        con.sql("select null as item_id, null::varchar as category where false").create_view(
            "catalog"
        )
    df = con.execute(
        "select r.*, c.category from recs r left join catalog c on r.item_id = c.item_id "
        "where cast(r.user_id as varchar) = $user order by r.rank",
        {"user": str(user_id)},
    ).df()
    default = Path(recs_dir) / version / DEFAULT_LIST_FILE
    if not df.empty or not default.exists():
        return version, df, False
    df = con.execute(
        "select d.*, null::double as propensity, c.category from read_parquet($f) d "
        "left join catalog c on d.item_id = c.item_id order by d.rank",
        {"f": str(default)},
    ).df()
    return version, df, True
