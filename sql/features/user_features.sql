-- One row per user with events before the cutoff: activity per event type and window,
-- recency, breadth and purchase rate. Item and category breadth come from the per-pair totals
-- (items missing from the catalogue count as category 'unknown').
-- Reads: events_asof, user_items_asof, catalog. Parameters: $as_of.
with events as (
    select * from events_asof
),

activity as (
    select
        user_id,
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
        sum(weight * decay) as decayed_strength
    from events
    group by user_id
),

breadth as (
    select
        p.user_id,
        count(p.item_id) as n_items,
        count(distinct coalesce(c.category, 'unknown')) as n_categories
    from user_items_asof as p
    left join catalog as c on p.item_id = c.item_id
    group by p.user_id
),

final as (
    select
        a.user_id,
        $as_of::timestamp as as_of,
        a.n_events,
        a.n_view_1d,
        a.n_view_7d,
        a.n_view_30d,
        a.n_view_all,
        a.n_cart_1d,
        a.n_cart_7d,
        a.n_cart_30d,
        a.n_cart_all,
        a.n_purchase_1d,
        a.n_purchase_7d,
        a.n_purchase_30d,
        a.n_purchase_all,
        a.days_since_last_event,
        a.days_since_first_event,
        a.active_days,
        a.n_sessions,
        b.n_items,
        b.n_categories,
        a.n_purchase_all / greatest(a.n_view_all, 1) as purchase_rate,
        a.decayed_strength
    from activity as a
    inner join breadth as b on a.user_id = b.user_id
)

select * from final
