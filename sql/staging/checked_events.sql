-- Every raw event row with the first reason it cannot land (null when it can).
-- Reads: raw_events (typed by code, with *_raw text columns), landed_events (lake rows in the
-- file's time range). Parameters: $event_types, $min_ts, $max_ts.
with raw as (
    select * from raw_events
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
            when price_raw is not null and price is null then 'bad_price'
            when price < 0 then 'negative_price'
            when quantity_raw is not null and quantity is null then 'bad_quantity'
            when quantity < 0 then 'negative_quantity'
        end as row_reason
    from raw
),

copies as (
    select
        *,
        row_number() over (
            partition by user_id, item_id, event_type, ts, session_id, price, quantity
            order by source_row
        ) as copy_no
    from flagged
),

landed as (
    select distinct user_id, item_id, event_type, ts, session_id from landed_events
),

final as (
    select
        c.source_row,
        c.user_id,
        c.item_id,
        c.event_type,
        c.ts,
        c.session_id,
        c.price,
        c.quantity,
        c.ts_raw,
        case
            when c.row_reason is not null then c.row_reason
            when c.copy_no > 1 then 'duplicate'
            when l.user_id is not null then 'already_in_lake'
        end as reason
    from copies as c
    left join landed as l
        on c.user_id = l.user_id
        and c.item_id = l.item_id
        and c.event_type = l.event_type
        and c.ts = l.ts
        and c.session_id is not distinct from l.session_id
)

select * from final
