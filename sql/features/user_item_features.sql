-- One row per (user, item) pair seen before the cutoff: decayed strength per event type,
-- counts, last interaction, repeat purchases. Reads: events_asof. Parameters: $as_of.
with events as (
    select * from events_asof
),

final as (
    select
        user_id,
        item_id,
        $as_of::timestamp as as_of,
        sum(weight * decay) as strength,
        coalesce(sum(decay) filter (where event_type = 'view'), 0.0) as decayed_views,
        coalesce(sum(decay) filter (where event_type = 'cart'), 0.0) as decayed_carts,
        coalesce(sum(decay) filter (where event_type = 'purchase'), 0.0) as decayed_purchases,
        count(*) filter (where event_type = 'view') as n_views,
        count(*) filter (where event_type = 'cart') as n_carts,
        count(*) filter (where event_type = 'purchase') as n_purchases,
        greatest(count(*) filter (where event_type = 'purchase') - 1, 0) as repeat_purchases,
        max(ts) as last_ts,
        min(age_days) as days_since_last,
        max(age_days) as days_since_first,
        min(age_days) filter (where event_type = 'purchase') as days_since_last_purchase,
        count(distinct session_key) as n_sessions
    from events
    group by user_id, item_id
)

select * from final
