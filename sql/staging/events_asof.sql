-- Events strictly before the cutoff, with category, event weight, age and time decay.
-- The one place the point-in-time filter lives: every feature table reads this.
-- Reads: lake_events, catalog. Parameters: $as_of, $event_types, $event_weights,
-- $half_life_days, $session_gap_minutes.
with events as (
    select user_id, item_id, event_type, ts, session_id, price, quantity
    from lake_events
    where ts < $as_of::timestamp
),

weights as (
    select unnest($event_types::varchar[]) as event_type, unnest($event_weights::double[]) as weight
),

catalog_categories as (
    select item_id, category from catalog
),

gaps as (
    select
        *,
        case
            when lag(ts) over (partition by user_id order by ts) is null then 1
            when ts - lag(ts) over (partition by user_id order by ts)
                > to_minutes(cast($session_gap_minutes as bigint)) then 1
            else 0
        end as new_session
    from events
),

sessions as (
    select
        *,
        sum(new_session) over (
            partition by user_id order by ts rows between unbounded preceding and current row
        ) as gap_session_no
    from gaps
),

final as (
    select
        s.user_id,
        s.item_id,
        s.event_type,
        s.ts,
        coalesce(
            s.session_id, cast(s.user_id as varchar) || '#' || cast(s.gap_session_no as varchar)
        ) as session_key,
        s.price,
        s.quantity,
        coalesce(c.category, 'unknown') as category,
        coalesce(w.weight, 0.0) as weight,
        date_diff('millisecond', s.ts, $as_of::timestamp) / 86400000.0 as age_days,
        pow(0.5, date_diff('millisecond', s.ts, $as_of::timestamp) / 86400000.0
            / $half_life_days) as decay
    from sessions as s
    left join catalog_categories as c on s.item_id = c.item_id
    left join weights as w on s.event_type = w.event_type
)

select * from final
