-- One row per user with events before the cutoff: activity per event type and window,
-- recency, breadth and purchase rate. Reads: events_asof. Parameters: $as_of.
with events as (
    select * from events_asof
),

final as (
    select
        user_id,
        $as_of::timestamp as as_of,
        count(*) as n_events,
        count(*) filter (where event_type = 'view' and age_days < 1) as n_view_1d,
        count(*) filter (where event_type = 'view' and age_days < 7) as n_view_7d,
        count(*) filter (where event_type = 'view' and age_days < 30) as n_view_30d,
        count(*) filter (where event_type = 'view') as n_view_all,
        count(*) filter (where event_type = 'cart' and age_days < 1) as n_cart_1d,
        count(*) filter (where event_type = 'cart' and age_days < 7) as n_cart_7d,
        count(*) filter (where event_type = 'cart' and age_days < 30) as n_cart_30d,
        count(*) filter (where event_type = 'cart') as n_cart_all,
        count(*) filter (where event_type = 'purchase' and age_days < 1) as n_purchase_1d,
        count(*) filter (where event_type = 'purchase' and age_days < 7) as n_purchase_7d,
        count(*) filter (where event_type = 'purchase' and age_days < 30) as n_purchase_30d,
        count(*) filter (where event_type = 'purchase') as n_purchase_all,
        min(age_days) as days_since_last_event,
        max(age_days) as days_since_first_event,
        count(distinct cast(ts as date)) as active_days,
        count(distinct session_key) as n_sessions,
        count(distinct item_id) as n_items,
        count(distinct category) as n_categories,
        count(*) filter (where event_type = 'purchase')
            / greatest(count(*) filter (where event_type = 'view'), 1) as purchase_rate,
        sum(weight * decay) as decayed_strength
    from events
    group by user_id
)

select * from final
