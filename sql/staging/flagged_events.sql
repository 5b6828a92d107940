-- Every raw event row with the first row check it fails (null when it passes) and a hash of its
-- contract columns but quantity (one order line split over rows: what `repeated_events` groups
-- on).
-- Reads: raw_events (typed by code; *_raw are the source values as read, for the null and
-- parse checks). Parameters: $event_types, $event_from / $event_to (the event map), $min_ts,
-- $max_ts. Materialised once per source file: the later steps read this table, not the file.
with raw as (
    select
        * replace (
            coalesce($event_to[list_position($event_from, event_type)], event_type) as event_type
        )
    from raw_events
),

final as (
    select
        source_row,
        user_id,
        item_id,
        event_type,
        ts,
        ts_raw,
        session_id,
        price,
        quantity,
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
            -- a purchase of a negative quantity is a return (set aside, like an anonymous row)
            when quantity < 0 and event_type = 'purchase' then 'return'
            when quantity < 0 then 'negative_quantity'
        end as row_reason,
        hash(user_id, item_id, event_type, ts, session_id, price) as row_hash
    from raw
)

select * from final
