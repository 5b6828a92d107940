-- Every raw event row with the first reason it cannot land (null when it can).
-- Reads: raw_events (typed by code; *_raw are the source values as read, for the null and
-- parse checks), landed_events (lake rows in the file's time range). Parameters: $event_types,
-- $min_ts, $max_ts. ts_raw is kept as text for quarantined rows only (what the quarantine shows).
with raw as (
    select
        * replace (
            coalesce($event_to[list_position($event_from, event_type)], event_type) as event_type
        )
    from raw_events
),

flagged as (
    select
        *,
        case
            when user_id is null then 'missing_user_id'
            when item_id is null then 'missing_item_id'
            when event_type is null then 'missing_event_type'
            when ts_raw is null then 'missing_ts'
            when ts is null then 'bad_timestamp'
            when not list_contains($event_types, event_type) then 'unknown_event_type'
            when ts < $min_ts::timestamp then 'ts_before_min'
            when ts > $max_ts::timestamp then 'ts_in_future'
            -- NaN and +-inf (from a float column or text such as 'nan', 'inf', 'Infinity')
            -- are not prices: NaN passes every comparison, so test them first
            when price_raw is not null and (price is null or not isfinite(price)) then 'bad_price'
            when price < 0 then 'negative_price'
            when quantity_raw is not null and (quantity is null or not isfinite(quantity))
                then 'bad_quantity'
            when quantity < 0 then 'negative_quantity'
        end as row_reason,
        hash(user_id, item_id, event_type, ts, session_id, price, quantity) as row_hash
    from raw
),

-- exact repeats: rows equal in all seven contract columns; the first (by source row) lands
-- (with the repeats' quantities summed) and the others are recorded as `duplicate`. Equal
-- rows have equal hashes, so only rows whose hash repeats are numbered.
repeated_hashes as (
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

landed as (
    select distinct user_id, item_id, event_type, ts, session_id from landed_events
),

checked as (
    select
        f.source_row,
        f.user_id,
        f.item_id,
        f.event_type,
        f.ts,
        f.session_id,
        f.price,
        -- exact repeats (order lines listing one product twice, double-fired events) collapse
        -- into their first row, which carries their summed quantity
        case
            when c.copy_no = 1 and f.row_reason is null then f.quantity * c.n_copies
            else f.quantity
        end as quantity,
        f.ts_raw,
        case
            when f.row_reason is not null then f.row_reason
            when c.copy_no > 1 then 'duplicate'
            when l.user_id is not null then 'already_in_lake'
        end as reason
    from flagged as f
    left join copies as c on f.source_row = c.source_row
    left join landed as l
        on f.user_id = l.user_id
        and f.item_id = l.item_id
        and f.event_type = l.event_type
        and f.ts = l.ts
        and f.session_id is not distinct from l.session_id
),

final as (
    select
        source_row,
        user_id,
        item_id,
        event_type,
        ts,
        session_id,
        price,
        quantity,
        case when reason is not null then cast(ts_raw as varchar) end as ts_raw,
        reason
    from checked
)

select * from final
