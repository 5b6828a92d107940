-- One row per (user, item) pair seen before the cutoff: the per-pair totals that the user,
-- item and user-item feature tables share, aggregated once (10M events -> ~5M pairs is the
-- most expensive group-by of the feature build). Reads: events_asof. No parameters.
with events as (
    select * from events_asof
),

final as (
    select
        user_id,
        item_id,
        sum(weight * decay) as strength,
        sum(case when event_type = 'view' then decay else 0.0 end) as decayed_views,
        sum(case when event_type = 'cart' then decay else 0.0 end) as decayed_carts,
        sum(case when event_type = 'purchase' then decay else 0.0 end) as decayed_purchases,
        count(*) filter (where event_type = 'view') as n_views,
        count(*) filter (where event_type = 'cart') as n_carts,
        count(*) filter (where event_type = 'purchase') as n_purchases,
        max(ts) as last_ts,
        min(age_days) as days_since_last,
        max(age_days) as days_since_first,
        min(case when event_type = 'purchase' then age_days end) as days_since_last_purchase,
        max(case when event_type = 'purchase' then age_days end) as days_since_first_purchase,
        count(distinct session_key) as n_sessions
    from events
    group by user_id, item_id
)

select * from final
