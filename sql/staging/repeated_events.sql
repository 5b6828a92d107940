-- The few rows of `flagged` whose fate is not decided by their own values: exact repeats and
-- rows already in the lake. One row per such source row; every other row is absent (and so
-- lands unless its row check failed). Reads: flagged (sql/staging/flagged_events.sql),
-- landed_events (lake rows in the file's time range).
--
-- exact repeats: rows equal in all seven contract columns; the first (by source row) lands
-- (with the repeats' quantities summed) and the others are recorded as `duplicate`. Equal
-- rows have equal hashes, so only rows whose hash repeats are numbered.
with repeated_hashes as (
    select row_hash
    from flagged
    group by row_hash
    having count(*) > 1
),

copies as (
    select
        f.source_row,
        row_number() over (
            partition by f.user_id, f.item_id, f.event_type, f.ts, f.session_id, f.price, f.quantity
            order by f.source_row
        ) as copy_no,
        count(*) over (
            partition by f.user_id, f.item_id, f.event_type, f.ts, f.session_id, f.price, f.quantity
        ) as n_copies
    from flagged as f
    semi join repeated_hashes as r on f.row_hash = r.row_hash
),

in_lake as (
    select f.source_row
    from flagged as f
    semi join landed_events as l
        on f.user_id = l.user_id
        and f.item_id = l.item_id
        and f.event_type = l.event_type
        and f.ts = l.ts
        and f.session_id is not distinct from l.session_id
),

final as (
    select
        coalesce(c.source_row, l.source_row) as source_row,
        c.copy_no,
        c.n_copies,
        l.source_row is not null as in_lake
    from copies as c
    full outer join in_lake as l on c.source_row = l.source_row
)

select * from final
