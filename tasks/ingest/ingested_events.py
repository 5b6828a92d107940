"""Validated ingestion: raw event / item / user files -> the Parquet lake.

Row-level problems send rows to `lake/quarantine/` with a `reason`; file-level problems (an
unreadable file, a missing column, a wrong type) or too many bad rows raise `IngestError`
naming the file, and nothing is published. Good rows are staged, checked by the
`expectations/events.json` suite, then moved into `lake/events/ingest-<id>/` (one Parquet file
per source file, one directory rename per ingest) and recorded in the manifest (see
`recpipe.tasks.ingest.event_lake` for what a killed ingest leaves). Files already ingested
(same sha256) are skipped. Surrounding whitespace of any kind (`WHITESPACE`) is stripped
from event types and text ids; NaN and infinite prices or quantities are quarantined as
`bad_price` / `bad_quantity`.
"""

from __future__ import annotations

import glob
import json
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from recpipe.errors import IngestError
from recpipe.settings import Settings
from recpipe.tasks.common.expectation_suites import SuiteResult, validate_frame
from recpipe.tasks.common.sql_files import create_table, create_view
from recpipe.tasks.common.stage_timings import stage
from recpipe.tasks.ingest import event_lake, staging_owners

MAX_BAD_ROW_SHARE: float = Settings.model_fields["max_bad_row_share"].default
SET_ASIDE = ("already_in_lake", "duplicate", "missing_user_id", "return")
"""Quarantine reasons that are normal in a real log, not corruption, so they never count towards
the bad-row share: rows already in the lake, exact repeats (collapsed into one event), anonymous
rows (no user_id: a guest's events cannot be personalised) and returns (a purchase of a negative
quantity). They are still set aside in the quarantine with their reason and counted in the
summary."""
# Events before this are quarantined (ts_before_min): a log from any year since 1970 lands;
# what lands before April 1970 is epoch seconds read as milliseconds (up to year 2200).
MIN_TS: datetime = Settings.model_fields["min_ts"].default
UNIT_MISTAKE_YEAR = 2200  # later timestamps are epoch milliseconds read as seconds

logger = logging.getLogger(__name__)

EVENT_COLUMNS = ("user_id", "item_id", "event_type", "ts", "session_id", "price", "quantity")
REQUIRED = {
    "events": ("user_id", "item_id", "event_type", "ts"),
    "items": ("item_id",),
    "users": ("user_id",),
}
INT_TYPES = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
}
NUM_TYPES = INT_TYPES | {"FLOAT", "DOUBLE", "REAL"}
READABLE = (".parquet", ".csv", ".tsv", ".csv.gz")
GX_SAMPLE_SEED = 42  # seeds the sample of good rows the events suite runs on
# zstd level of the lake's Parquet files: level 1 writes the medium shop's events with about a
# fifth less CPU than DuckDB's default level 3, for files about 12% larger
ZSTD_LEVEL = 1
# Stripped around event types and text ids: Unicode White_Space (tab, newline, CR, VT, FF, NEL,
# no-break space, the U+2000 spaces, line/paragraph separators, ideographic space...) plus the
# invisible zero-width space and byte-order mark that exports leave behind. DuckDB's trim()
# strips only ' '.
WHITESPACE = (  # inclusive code point ranges
    (0x09, 0x0D),
    (0x20, 0x20),
    (0x85, 0x85),
    (0xA0, 0xA0),
    (0x1680, 0x1680),
    (0x2000, 0x200B),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
    (0xFEFF, 0xFEFF),
)
_WS_CLASS = "[" + "".join(f"\\x{{{lo:x}}}-\\x{{{hi:x}}}" for lo, hi in WHITESPACE) + "]"


@dataclass
class FileReport:
    source: str
    kind: str
    fingerprint: str
    rows_in: int = 0
    rows_landed: int = 0
    rows_quarantined: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    skipped: str | None = None
    gx: dict | None = None


@dataclass
class IngestSummary:
    """What one ingest did: rows in, landed and quarantined by reason, per file and in total."""

    ingest_id: str
    published: bool
    files: list[FileReport] = field(default_factory=list)
    report_path: str | None = None

    @property
    def rows_in(self) -> int:
        return sum(f.rows_in for f in self.files)

    @property
    def rows_landed(self) -> int:
        return sum(f.rows_landed for f in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)

    @property
    def by_reason(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.files:
            for k, v in f.by_reason.items():
                out[k] = out.get(k, 0) + v
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(
            rows_in=self.rows_in,
            rows_landed=self.rows_landed,
            rows_quarantined=self.rows_quarantined,
            by_reason=self.by_reason,
        )
        return d

    def markdown(self) -> str:
        lines = [
            f"### Ingest `{self.ingest_id}`",
            "",
            f"rows in **{self.rows_in:,}**, landed **{self.rows_landed:,}**, "
            f"quarantined **{self.rows_quarantined:,}**",
            "",
            "| file | kind | rows in | landed | quarantined | note |",
            "|---|---|---:|---:|---:|---|",
        ]
        for f in self.files:
            note = f.skipped or ", ".join(f"{k}: {v}" for k, v in f.by_reason.items()) or "clean"
            lines.append(
                f"| {Path(f.source).name} | {f.kind} | {f.rows_in:,} | {f.rows_landed:,} "
                f"| {f.rows_quarantined:,} | {note} |"
            )
        if self.by_reason:
            lines += ["", "| reason | rows |", "|---|---:|"]
            lines += [f"| {k} | {v:,} |" for k, v in self.by_reason.items()]
        return "\n".join(lines)


class _SuiteRuns:
    """Great Expectations runs of one ingest, done on one worker thread in submission order.

    Importing GX and running a suite are pure Python, while the row checks and Parquet writes
    run in DuckDB (which releases the GIL): running the suites beside the next file's DuckDB
    work hides most of their cost. `collect` waits for them in file order and raises the first
    failure, so the ingest fails with the same error, and publishes nothing, as if each suite
    had run before its file's rows were staged.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-gx")
        self._runs: list[tuple[int, FileReport, Future, Callable[[SuiteResult], str]]] = []

    def submit(
        self,
        n: int,
        report: FileReport,
        frame: pd.DataFrame,
        suite: str,
        parameters: dict | None,
        failure: Callable[[SuiteResult], str],
    ) -> None:
        """Queue `suite` on `frame` for job `n`; `failure` words the IngestError if it fails."""
        self._runs.append(
            (n, report, self._pool.submit(_validated, frame, suite, parameters), failure)
        )

    def collect(self, before: int | None = None) -> None:
        """Wait for the runs (of jobs before `before`, or all), record them, raise the first failure."""
        while self._runs and (before is None or self._runs[0][0] < before):
            _, report, future, failure = self._runs.pop(0)
            result = future.result()
            report.gx = result.as_dict()
            if not result.success:
                raise IngestError(failure(result))

    def close(self) -> None:
        """Drop queued runs; a run in progress finishes in the background."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def _validated(frame: pd.DataFrame, suite: str, parameters: dict | None) -> SuiteResult:
    with stage("validation", rows_in=len(frame), part=suite, thread=True):
        return validate_frame(frame, suite, parameters)


def source_files(spec: str | Path) -> list[Path]:
    """Files named by a path to a file, a directory (searched recursively) or a glob."""
    spec_s = str(spec)
    p = Path(spec_s).expanduser()
    if any(ch in spec_s for ch in "*?["):
        files = [Path(f) for f in sorted(glob.glob(spec_s, recursive=True))]
    elif p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.name.endswith(READABLE))
    elif p.exists():
        files = [p]
    else:
        raise IngestError(f"{spec_s}: no such file or directory")
    files = [f for f in files if f.is_file()]
    if not files:
        raise IngestError(f"{spec_s}: no event files found (looked for {', '.join(READABLE)})")
    return files


def _read_source(
    con: duckdb.DuckDBPyConnection, path: Path, text_columns: tuple[str, ...] = ()
) -> duckdb.DuckDBPyRelation:
    """A relation over one raw file with a 1-based `source_row` column; IngestError if unreadable.

    CSV columns named in `text_columns` (any case) are read as text, whatever the sniffer
    guesses from its sample, so that the caller parses every value itself.
    """
    try:
        if path.name.endswith(".parquet"):
            # opening it reads and checks the footer; pages that do not read fail the staging
            # (an IngestError naming the file), so no row group is read here first
            rel = con.read_parquet(str(path), file_row_number=True)
            return rel.select("*, file_row_number + 1 as source_row").select(
                duckdb.StarExpression(exclude=["file_row_number"])
            )
        rel = con.read_csv(str(path), header=True)
        as_text = {c: "VARCHAR" for c in rel.columns if c.lower() in text_columns}
        if as_text:
            rel = con.read_csv(str(path), header=True, dtype=as_text)
        rel = rel.select("*, row_number() over () as source_row")
        rel.limit(1).fetchall()
    except duckdb.Error as exc:
        raise IngestError(f"{path}: cannot read the file ({str(exc).splitlines()[0]})") from exc
    return rel


def _type_family(dtype: str) -> str:
    dtype = dtype.upper()
    if dtype in INT_TYPES:
        return "int"
    if dtype in NUM_TYPES or dtype.startswith("DECIMAL"):
        return "num"
    if dtype == "VARCHAR":
        return "str"
    if dtype == "TIMESTAMP WITH TIME ZONE":
        return "tstz"
    if dtype.startswith("TIMESTAMP") or dtype == "DATE":
        return "ts"
    if dtype == "BOOLEAN":
        return "bool"
    return dtype.lower()


def _quoted(col: str) -> str:
    return f'"{col}"'


def _stripped(expr: str) -> str:
    """SQL for `expr` (text) without leading or trailing `WHITESPACE`.

    The regexp runs only for values whose first or last character lies outside '!'..U+0084
    (every `WHITESPACE` character does): most values start and end with a printable ASCII
    character, and for them this costs about what trim() did.
    """
    runs = f"^{_WS_CLASS}+|{_WS_CLASS}+$"
    return (
        f"(case when ord({expr}[1]) not between 33 and 132 "
        f"or ord({expr}[-1]) not between 33 and 132 "
        f"then regexp_replace({expr}, '{runs}', '', 'g') else {expr} end)"
    )


def _id_expr(path: Path, col: str, fam: str, lake_type: str | None) -> tuple[str, str]:
    """Typed expression for an id column and the id type it yields."""
    if fam == "int":
        expr, typ = f'cast("{col}" as bigint)', "BIGINT"
    elif fam == "str":
        expr, typ = f"nullif({_stripped(_quoted(col))}, '')", "VARCHAR"
    else:
        raise IngestError(f"{path}: column {col} has type {fam}; ids must be integers or strings")
    if lake_type == "VARCHAR" and typ == "BIGINT":
        return f"cast({expr} as varchar)", "VARCHAR"
    if lake_type == "BIGINT" and typ == "VARCHAR":
        raise IngestError(
            f"{path}: column {col} holds strings but the lake holds integer "
            f"{col}s; ingest into a new data directory or convert the ids"
        )
    return expr, typ


def _ts_expr(path: Path, col: str, fam: str) -> str:
    if fam == "ts":
        return f'cast("{col}" as timestamp)'
    if fam == "tstz":
        return f"timezone('UTC', \"{col}\")"
    if fam == "str":
        return (
            f'coalesce(try_cast("{col}" as timestamp), '
            f"timezone('UTC', try_cast(\"{col}\" as timestamptz)))"
        )
    raise IngestError(
        f"{path}: column {col} has type {fam}; the contract wants a timestamp "
        "(convert epoch numbers with `recpipe import generic --ts-unit s|ms`)"
    )


def _num_expr(path: Path, col: str, fam: str) -> str:
    if fam in ("int", "num"):
        return f'cast("{col}" as double)'
    if fam == "str":
        return f'try_cast("{col}" as double)'
    raise IngestError(f"{path}: column {col} has type {fam}; expected a number")


def _typed_events(
    path: Path, rel: duckdb.DuckDBPyRelation, id_types: dict[str, str]
) -> tuple[duckdb.DuckDBPyRelation, dict[str, str]]:
    """Map a raw relation onto the event contract, keeping `*_raw` source values for row checks.

    The `*_raw` columns are the source columns as read (text for CSV, typed for Parquet): the
    checks only ask whether they are null, and only quarantined rows show `ts_raw` (as text).
    """
    types = {c.lower(): _type_family(str(t)) for c, t in zip(rel.columns, rel.types, strict=True)}
    cols = {c.lower(): c for c in rel.columns}
    missing = [c for c in REQUIRED["events"] if c not in types]
    if missing:
        raise IngestError(
            f"{path}: missing required column(s) {', '.join(missing)} "
            f"(found: {', '.join(rel.columns)})"
        )
    if types["event_type"] != "str":
        raise IngestError(
            f"{path}: column event_type has type {types['event_type']}; expected text"
        )
    out_types: dict[str, str] = {}
    exprs = ["source_row"]
    for key in ("user_id", "item_id"):
        e, out_types[key] = _id_expr(path, cols[key], types[key], id_types.get(key))
        exprs.append(f"{e} as {key}")
    exprs.append(f"lower({_stripped(_quoted(cols['event_type']))}) as event_type")
    exprs.append(f"{_ts_expr(path, cols['ts'], types['ts'])} as ts")
    exprs.append(f'"{cols["ts"]}" as ts_raw')
    # session ids are text in the lake; integer ids stay integers until `checked` (sql/staging/
    # checked_events.sql) casts them for the rows read out: equal integers are equal texts, so
    # the repeat checks group alike, and the materialised rows hold 8 bytes instead of a string
    # per row (the cast up front cost 0.07 of 0.30 s per 2.5M-row file of `medium`)
    if "session_id" not in cols:
        exprs.append("cast(null as varchar) as session_id")
    elif types["session_id"] in ("int", "str"):
        exprs.append(f'"{cols["session_id"]}" as session_id')
    else:
        exprs.append(f'cast("{cols["session_id"]}" as varchar) as session_id')
    for key in ("price", "quantity"):
        if key in cols:
            exprs.append(f"{_num_expr(path, cols[key], types[key])} as {key}")
            exprs.append(f'"{cols[key]}" as {key}_raw')
        else:
            exprs += [f"cast(null as double) as {key}", f"cast(null as varchar) as {key}_raw"]
    return rel.select(", ".join(exprs)), out_types


def _landed_events(
    con: duckdb.DuckDBPyConnection, lake_dir: Path, id_types: dict[str, str], lo, hi
) -> None:
    """Temp view `landed_events`: lake rows in [lo, hi] (empty and typed when no landed file
    can hold such rows, e.g. for a new lake or a file newer than everything landed)."""
    files = event_lake.event_files_between(lake_dir, lo, hi) if lo is not None else []
    if files:
        rel = con.read_parquet(files, hive_partitioning=False).filter(
            duckdb.ColumnExpression("ts").between(
                duckdb.ConstantExpression(lo), duckdb.ConstantExpression(hi)
            )
        )
    else:
        ut, it = id_types.get("user_id", "BIGINT"), id_types.get("item_id", "BIGINT")
        assert ut in ("BIGINT", "VARCHAR") and it in ("BIGINT", "VARCHAR")
        rel = con.sql(
            f"select null::{ut} as user_id, null::{it} as item_id, null::varchar as "
            "event_type, null::timestamp as ts, null::varchar as session_id where false"
        )
    rel.create_view("landed_events", replace=True)


def _gx_sample(con: duckdb.DuckDBPyConnection, rows_landed: int, sample_rows: int) -> pd.DataFrame:
    """The good rows of `checked` the events suite runs on: all of them, or a seeded sample.

    The sample keeps each row whose seeded hash of its source row falls below a threshold, so
    it holds about `sample_rows` rows, costs one scan (no sort), and the same file always gives
    the same sample whatever the thread count. `ts` is handed over as datetime64[ns], the
    dtype GX compares vectorised (it loops in Python over other units).
    """
    cols = "user_id, item_id, event_type, ts, session_id, price, quantity"
    if rows_landed <= sample_rows:
        rel = con.sql(f"select {cols} from checked where reason is null")
    else:
        threshold = (sample_rows << 64) // rows_landed
        rel = con.sql(
            f"select {cols} from checked where reason is null "
            "and hash(source_row, $seed::bigint) < $threshold::ubigint",
            params={"seed": GX_SAMPLE_SEED, "threshold": threshold},
        )
    frame = rel.df()
    try:
        frame["ts"] = frame["ts"].astype("datetime64[ns]")
    except (OverflowError, ValueError):  # outside the ns range: leave it, GX still checks it
        pass
    return frame


def _stage_events(
    con,
    path: Path,
    lake_dir: Path,
    staging: Path,
    ingest_id: str,
    n: int,
    settings: dict,
    id_types: dict[str, str],
    suites: _SuiteRuns,
    fingerprint: str | None = None,
) -> tuple[FileReport, dict[str, str]]:
    """Check one events file and stage its good and quarantined rows; IngestError on file problems.

    The events suite on a sample of the good rows is queued on `suites` (see `_SuiteRuns`).
    """
    report = FileReport(
        source=str(path),
        kind="events",
        fingerprint=fingerprint or event_lake.file_fingerprint(path),
    )
    raw = _read_source(con, path)
    typed, file_id_types = _typed_events(path, raw, id_types)
    typed.create_view("raw_events", replace=True)
    params = {
        "event_types": settings["event_types"],
        "event_from": list(settings["event_map"]),
        "event_to": list(settings["event_map"].values()),
        "min_ts": settings["min_ts"],
        "max_ts": settings["max_ts"],
    }
    # the source is read once: the row checks are materialised in `flagged`, exact repeats and
    # rows already in the lake (usually few) in `repeated`, and the view `checked` joins them
    create_table(con, "flagged", "staging/flagged_events", params, temp=True)
    lo_hi = (
        con.sql("select min(ts), max(ts) from flagged").fetchall()[0]
        if event_lake.read_manifest(lake_dir).files("events")
        else (None, None)
    )
    _landed_events(con, lake_dir, id_types or file_id_types, *lo_hi)
    create_table(con, "repeated", "staging/repeated_events", temp=True)
    create_view(con, "checked", "staging/checked_events", temp=True)
    # one scan: rows per reason, and the time range of the rows that land (for the manifest)
    counts = con.sql(
        "select reason, count(*), min(ts)::varchar, max(ts)::varchar from checked group by 1"
    ).fetchall()
    good = [c for c in counts if c[0] is None]
    report.rows_in = sum(int(c[1]) for c in counts)
    report.by_reason = {
        r: int(c) for r, c, _, _ in sorted(counts, key=lambda c: -c[1]) if r is not None
    }
    report.rows_quarantined = sum(report.by_reason.values())
    report.rows_landed = report.rows_in - report.rows_quarantined
    report._ts_range = (good[0][2], good[0][3]) if good else (None, None)  # type: ignore[attr-defined]
    bad = report.rows_quarantined - sum(report.by_reason.get(r, 0) for r in SET_ASIDE)
    if report.rows_in == 0:
        raise IngestError(f"{path}: the file has no rows")
    if report.by_reason.get("missing_user_id", 0) == report.rows_in:
        raise IngestError(
            f"{path}: no row has a user_id (all {report.rows_in:,} are empty): check which "
            "source column is mapped to user_id. Nothing was written to the lake."
        )
    share = bad / report.rows_in
    if share > settings["max_bad_row_share"]:
        examples = con.execute(
            "select source_row, reason from checked where reason is not null "
            "and not list_contains($aside, reason) order by source_row limit 5",
            {"aside": list(SET_ASIDE)},
        ).fetchall()
        ex = "; ".join(f"row {r}: {why}" for r, why in examples)
        raise IngestError(
            f"{path}: {bad:,} of {report.rows_in:,} rows ({share:.1%}) are bad, above the "
            f"allowed {settings['max_bad_row_share']:.1%} ({report.by_reason}); e.g. {ex}."
            f"{_unit_hint(con)} Nothing was written to the lake."
        )
    frame = _gx_sample(con, report.rows_landed, settings["gx_sample_rows"])
    suites.submit(
        n,
        report,
        frame,
        "events",
        {
            "event_types": settings["event_types"],
            "min_ts": pd.Timestamp(settings["min_ts"]),
            "max_ts": pd.Timestamp(settings["max_ts"]),
        },
        lambda gx: (
            f"{path}: rows passed the row checks but failed the events suite: "
            f"{gx.failures()}. Nothing was written to the lake."
        ),
    )
    # one events file per source file, rows in the source's order (readers never rely on row
    # order; sorting by ts cost a full sort per file, and splitting it into one file per day, as
    # the lake did before, made DuckDB's write twice as slow: 0.67 against 0.34 s per 2.5M-row
    # file of `medium`, for a split that only pruned the already-in-lake check, which the
    # manifest's per-file time range prunes as well)
    files, qfiles = [], []
    if report.rows_landed:
        files = _staged_parquet(
            con,
            staging,
            "events",
            ingest_id,
            n,
            "select user_id, item_id, event_type, ts, session_id, price, quantity "
            "from checked where reason is null",
        )
    if report.rows_quarantined:
        qfiles = _staged_parquet(
            con,
            staging,
            "quarantine",
            ingest_id,
            n,
            "select * exclude (reason), reason, $source as source_file from checked "
            "where reason is not null",
            {"source": str(path)},
        )
    report._files = files  # type: ignore[attr-defined]
    report._qfiles = qfiles  # type: ignore[attr-defined]
    return report, file_id_types


def _staged_parquet(
    con: duckdb.DuckDBPyConnection,
    staging: Path,
    kind: str,
    ingest_id: str,
    n: int,
    select: str,
    params: dict | None = None,
) -> list[str]:
    """Write `select`'s rows as job `n`'s staged file of `kind` in the ingest's batch directory
    (zstd at ZSTD_LEVEL); returns its path relative to the lake, as the manifest lists it.
    `select` is interpolated: callers pass only SQL built from code constants."""
    rel = Path(event_lake.batch_dir(kind, ingest_id)) / f"part-{ingest_id}-{n:03d}.parquet"
    target = staging / "lake" / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    con.execute(
        f"copy ({select}) to $path (format parquet, compression zstd, compression_level $level)",
        {**(params or {}), "path": str(target), "level": ZSTD_LEVEL},
    )
    return [str(rel)]


def _unit_hint(con: duckdb.DuckDBPyConnection) -> str:
    """The likely epoch-unit mistake behind out-of-range timestamps, if that is what they are."""
    early, late = con.sql(
        "select max(ts) filter (where reason = 'ts_before_min'), "
        "max(year(ts)) filter (where reason = 'ts_in_future') from checked"
    ).fetchall()[0]
    if late is not None and late > UNIT_MISTAKE_YEAR:
        return (
            f" Timestamps in year {late:,} look like epoch milliseconds read as seconds: "
            "convert with `recpipe import generic ... --ts-unit ms`."
        )
    if early is not None and early < MIN_TS:
        return (
            f" Timestamps in early 1970 (up to {early}) look like epoch seconds read as "
            "milliseconds: convert with `recpipe import generic ... --ts-unit s`."
        )
    return ""


TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")


def _flag_expr(raw: duckdb.DuckDBPyRelation, path: Path, name: str, col: str, fam: str) -> str:
    """Typed expression for a true/false catalogue column (`available`), read strictly.

    Booleans, the integers 0/1 and the words in TRUE_WORDS / FALSE_WORDS (any case, surrounding
    whitespace ignored) count; null or empty means "not stated" and reads as true. Any other
    value is a row problem of the catalogue file, which fails as a whole (as its other row
    problems do, through its suite): IngestError naming the file, column, a bad value and its row.
    """
    if fam == "bool":
        return f'coalesce("{col}", true)'
    if fam == "int":
        value, bad = f'("{col}" = 1)', f'"{col}" not in (0, 1)'
    elif fam == "str":
        word = f"lower({_stripped(_quoted(col))})"
        words = ", ".join(f"'{w}'" for w in TRUE_WORDS + FALSE_WORDS)
        trues = ", ".join(f"'{w}'" for w in TRUE_WORDS)
        value = f"(case when {word} = '' then null else {word} in ({trues}) end)"
        bad = f"{word} not in ('', {words})"
    else:
        raise IngestError(f"{path}: column {name} has type {fam}; expected true/false")
    found = (
        raw.filter(bad)
        .aggregate(f'count(*), arg_min(cast("{col}" as varchar), source_row), min(source_row)')
        .fetchall()[0]
    )
    if found[0]:
        raise IngestError(
            f"{path}: column {name} holds {found[0]:,} value(s) that are not true/false "
            f"({'/'.join(TRUE_WORDS)} or {'/'.join(FALSE_WORDS)}, or empty for true), "
            f"e.g. {found[1]!r} in row {found[2]}. Nothing was written to the lake."
        )
    return f"coalesce({value}, true)"


_CATALOG_COLUMNS = {
    "items": [
        ("item_id", "id"),
        ("category", "str"),
        ("brand", "str"),
        ("price", "num"),
        ("available", "bool"),
        ("created_at", "ts"),
    ],
    "users": [("user_id", "id"), ("signup_ts", "ts")],
}


def _stage_catalog(
    con,
    path: Path,
    kind: str,
    staging: Path,
    ingest_id: str,
    n: int,
    id_types: dict[str, str],
    suites: _SuiteRuns,
    fingerprint: str | None = None,
) -> tuple[FileReport, dict[str, str]]:
    """Stage an items or users file as one Parquet snapshot; its suite is queued on `suites`."""
    report = FileReport(
        source=str(path), kind=kind, fingerprint=fingerprint or event_lake.file_fingerprint(path)
    )
    # a CSV's flags are parsed by `_flag_expr`: a sniffed BOOLEAN would fail on a late bad value
    flags = tuple(name for name, role in _CATALOG_COLUMNS[kind] if role == "bool")
    raw = _read_source(con, path, text_columns=flags)
    types = {c.lower(): _type_family(str(t)) for c, t in zip(raw.columns, raw.types, strict=True)}
    cols = {c.lower(): c for c in raw.columns}
    missing = [c for c in REQUIRED[kind] if c not in types]
    if missing:
        raise IngestError(
            f"{path}: missing required column(s) {', '.join(missing)} "
            f"(found: {', '.join(raw.columns)})"
        )
    exprs, out_types = [], {}
    for name, role in _CATALOG_COLUMNS[kind]:
        if name not in cols:
            default = {
                "str": "null::varchar",
                "num": "null::double",
                "ts": "null::timestamp",
                "bool": "true",
            }[role]
            exprs.append(f"{default} as {name}")
            continue
        fam, c = types[name], cols[name]
        if role == "id":
            e, out_types[name] = _id_expr(path, c, fam, id_types.get(name))
        elif role == "str":
            e = f'cast("{c}" as varchar)'
        elif role == "num":
            e = _num_expr(path, c, fam)
        elif role == "bool":
            e = _flag_expr(raw, path, name, c, fam)
        else:
            e = _ts_expr(path, c, fam)
        exprs.append(f"{e} as {name}")
    typed = raw.select(", ".join(exprs))
    frame = typed.df()
    report.rows_in = len(frame)
    suites.submit(
        n,
        report,
        frame,
        kind,
        None,
        lambda gx: (
            f"{path}: the {kind} file fails its checks: {gx.failures()}. "
            "Nothing was written to the lake."
        ),
    )
    rel_path = Path(event_lake.batch_dir(kind, ingest_id)) / f"{kind}-{ingest_id}-{n:03d}.parquet"
    (staging / "lake" / rel_path).parent.mkdir(parents=True, exist_ok=True)
    typed.write_parquet(str(staging / "lake" / rel_path), compression="zstd")
    report.rows_landed = report.rows_in
    report._files = [str(rel_path)]  # type: ignore[attr-defined]
    report._qfiles = []  # type: ignore[attr-defined]
    return report, out_types


def ingested_events(
    events: str | Path | None,
    lake_dir: Path,
    event_types: list[str],
    items: str | Path | None = None,
    users: str | Path | None = None,
    max_bad_row_share: float = MAX_BAD_ROW_SHARE,
    min_ts: datetime = MIN_TS,
    event_map: dict[str, str] | None = None,
    now: datetime | None = None,
    gx_sample_rows: int = 200_000,
    reports_dir: Path | None = None,
) -> IngestSummary:
    """Validate and land event files (plus optional items/users snapshots) in the lake.

    Returns the summary; raises IngestError (after writing nothing to the lake) on any
    file-level failure. Event timestamps later than `now` (UTC, default the clock) + 5 min
    are quarantined as `ts_in_future`.
    """
    with stage("ingest") as st:
        summary = _ingested_events(
            events,
            lake_dir,
            event_types,
            items=items,
            users=users,
            max_bad_row_share=max_bad_row_share,
            min_ts=min_ts,
            event_map=event_map,
            now=now,
            gx_sample_rows=gx_sample_rows,
            reports_dir=reports_dir,
        )
        st.rows_in, st.rows_out = summary.rows_in, summary.rows_landed
    return summary


def _ingested_events(
    events: str | Path | None,
    lake_dir: Path,
    event_types: list[str],
    items: str | Path | None = None,
    users: str | Path | None = None,
    max_bad_row_share: float = MAX_BAD_ROW_SHARE,
    min_ts: datetime = MIN_TS,
    event_map: dict[str, str] | None = None,
    now: datetime | None = None,
    gx_sample_rows: int = 200_000,
    reports_dir: Path | None = None,
) -> IngestSummary:
    lake_dir = Path(lake_dir)
    event_lake.remove_orphans(lake_dir)
    manifest = event_lake.read_manifest(lake_dir)
    now = now or datetime.now(UTC).replace(tzinfo=None)
    ingest_id = staging_owners.new_ingest_id()
    settings = {
        "event_types": list(event_types),
        "event_map": dict(event_map or {}),
        "min_ts": min_ts,
        "max_ts": now + timedelta(minutes=5),
        "max_bad_row_share": max_bad_row_share,
        "gx_sample_rows": gx_sample_rows,
    }
    summary = IngestSummary(ingest_id=ingest_id, published=False)
    id_types = dict(manifest.id_types)
    seen = manifest.fingerprints()
    records: list[event_lake.IngestRecord] = []
    claim = staging_owners.claim_staging(lake_dir, ingest_id)  # released below, however it ends
    staging = claim.staging
    con = duckdb.connect()
    suites = _SuiteRuns()
    # the sha256 of every file, read in order on a thread ahead of the staging (hashlib releases
    # the GIL): 0.02 s per 30 MB file that the staging no longer waits for
    hashing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-sha256")
    try:
        jobs: list[tuple[str, Path]] = []
        for kind, spec in (("items", items), ("users", users), ("events", events)):
            if spec is not None:
                jobs += [(kind, f) for f in source_files(spec)]
        fingerprints = hashing.map(event_lake.file_fingerprint, [path for _, path in jobs])
        for n, ((kind, path), fp) in enumerate(zip(jobs, fingerprints, strict=True)):
            if fp in seen:
                logger.info("%s: already ingested (sha256 %s), skipped", path, fp[:12])
                summary.files.append(
                    FileReport(
                        source=str(path), kind=kind, fingerprint=fp, skipped="already ingested"
                    )
                )
                continue
            try:
                if kind == "events":
                    rep, types = _stage_events(
                        con,
                        path,
                        lake_dir,
                        staging,
                        ingest_id,
                        n,
                        settings,
                        id_types,
                        suites,
                        fp,
                    )
                else:
                    rep, types = _stage_catalog(
                        con, path, kind, staging, ingest_id, n, id_types, suites, fp
                    )
            except (IngestError, duckdb.Error) as exc:
                # an earlier file whose suite failed stops the ingest first, as it always has
                try:
                    suites.collect(before=n)
                except IngestError as earlier:
                    raise earlier from None
                if isinstance(exc, IngestError):
                    raise
                # DuckDB failed on the file's rows: a value it cannot convert (e.g. a CSV value
                # past the sniffer's sample), or a Parquet file whose footer opened but whose
                # pages do not read
                lines = [line for line in str(exc).splitlines() if line.strip()][:3]
                raise IngestError(f"{path}: {'; '.join(lines)}") from exc
            for k, v in types.items():
                id_types.setdefault(k, v)
            seen.add(fp)
            summary.files.append(rep)
            mm = getattr(rep, "_ts_range", (None, None))
            records.append(
                event_lake.IngestRecord(
                    ingest_id=f"{ingest_id}-{n:03d}",
                    source=str(path.resolve()),
                    fingerprint=fp,
                    kind=kind,
                    rows_in=rep.rows_in,
                    rows_landed=rep.rows_landed,
                    rows_quarantined=rep.rows_quarantined,
                    files=rep._files,
                    quarantine_files=rep._qfiles,
                    landed_at=datetime.now(UTC).isoformat(),
                    min_ts=mm[0],
                    max_ts=mm[1],
                )
            )
            logger.info(
                "%s: %d rows in, %d landed, %d quarantined",
                path,
                rep.rows_in,
                rep.rows_landed,
                rep.rows_quarantined,
            )
        suites.collect()
    except BaseException:
        hashing.shutdown(wait=False, cancel_futures=True)
        suites.close()
        con.close()
        claim.release()
        raise
    hashing.shutdown()
    suites.close()
    con.close()
    try:
        if records:
            event_lake.publish_staged(lake_dir, staging / "lake", ingest_id, records, id_types)
            summary.published = True
    finally:
        claim.release()
    reports_dir = Path(reports_dir) if reports_dir else lake_dir / "_reports"
    reports_dir.mkdir(parents=True, exist_ok=True)
    report_path = reports_dir / f"ingest-{ingest_id}.json"
    summary.report_path = str(report_path)
    report_path.write_text(json.dumps(summary.as_dict(), indent=1, default=str))
    return summary
