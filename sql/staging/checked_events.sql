-- Every raw event row with the first reason it cannot land (null when it can).
-- Reads: flagged (sql/staging/flagged_events.sql: the row checks), repeated (sql/staging/
-- repeated_events.sql: exact repeats and rows already in the lake, usually few rows). No
-- parameters: it is a view, read once for the counts, once for the suite's sample and once per
-- file written, each a scan of `flagged` joined to the small `repeated`. ts_raw is kept as text
-- for quarantined rows only (what the quarantine shows). session_id is cast to text here, for
-- the rows read out only: `flagged` keeps integer session ids as integers.
with checked as (
    select
        f.source_row,
        f.user_id,
        f.item_id,
        f.event_type,
        f.ts,
        f.session_id,
        f.price,
        -- repeats (order lines listing one product twice, double-fired events) collapse into
        -- their first row, which carries their summed quantity
        case
            when r.copy_no = 1 and f.row_reason is null then r.total_quantity
            else f.quantity
        end as quantity,
        f.ts_raw,
        case
            when f.row_reason is not null then f.row_reason
            when r.copy_no > 1 then 'duplicate'
            when r.in_lake then 'already_in_lake'
        end as reason
    from flagged as f
    left join repeated as r on f.source_row = r.source_row
),

final as (
    select
        source_row,
        user_id,
        item_id,
        event_type,
        ts,
        cast(session_id as varchar) as session_id,
        price,
        quantity,
        case when reason is not null then cast(ts_raw as varchar) end as ts_raw,
        reason
    from checked
)

select * from final
