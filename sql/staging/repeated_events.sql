-- The few rows of `flagged` whose fate is not decided by their own values: exact repeats and
-- rows already in the lake. One row per such source row; every other row is absent (and so
-- lands unless its row check failed). Reads: flagged (sql/staging/flagged_events.sql),
-- landed_events (lake rows in the file's time range).
--
-- repeats: rows that pass their checks and are equal in every contract column but quantity
-- (an order listing one product on two lines, with the same or another quantity; a
-- double-fired view). The first (by source row) lands with the quantities summed, the others
-- are recorded as `duplicate`; so no two landed rows of a file are alike, whatever their
-- quantities. Equal rows have equal hashes, so only rows whose hash repeats are numbered.
with repeated_hashes as (
    select row_hash
    from flagged
    where row_reason is null
    group by row_hash
    having count(*) > 1
),

copies as (
    select
        f.source_row,
        row_number() over (
            partition by f.user_id, f.item_id, f.event_type, f.ts, f.session_id, f.price
            order by f.source_row
        ) as copy_no,
        sum(f.quantity) over (
            partition by f.user_id, f.item_id, f.event_type, f.ts, f.session_id, f.price
        ) as total_quantity
    from flagged as f
    semi join repeated_hashes as r on f.row_hash = r.row_hash
    where f.row_reason is null
),

in_lake as (
    select f.source_row
    from flagged as f
    semi join landed_events as l
        on f.user_id = l.user_id
        and f.item_id = l.item_id
        and f.event_type = l.event_type
        and f.ts = l.ts
        and cast(f.session_id as varchar) is not distinct from l.session_id
),

final as (
    select
        coalesce(c.source_row, l.source_row) as source_row,
        c.copy_no,
        c.total_quantity,
        l.source_row is not null as in_lake
    from copies as c
    full outer join in_lake as l on c.source_row = l.source_row
)

select * from final
