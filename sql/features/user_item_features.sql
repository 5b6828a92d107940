-- One row per (user, item) pair seen before the cutoff: decayed strength per event type,
-- counts, last interaction, repeat purchases and the user's own cadence for the item (mean
-- days between their purchases of it, and how far into that gap they are now: 1 = due).
-- The per-pair totals are aggregated once in staging/user_items_asof (shared with user and
-- item features).
-- `basket_share` is the share of the user's sessions (baskets) that hold the item: the
-- frequency a buy-again list ranks by. Reads: user_items_asof, events_asof. Parameters: $as_of.
with user_sessions as (
    select user_id, count(distinct session_key) as n_user_sessions
    from events_asof
    group by user_id
),

pairs as (
    select
        p.*,
        u.n_user_sessions,
        (p.days_since_first_purchase - p.days_since_last_purchase)
        / nullif(p.n_purchases - 1, 0) as purchase_gap_days
    from user_items_asof as p
    left join user_sessions as u on p.user_id = u.user_id
),

final as (
    select
        user_id,
        item_id,
        $as_of::timestamp as as_of,
        strength,
        decayed_views,
        decayed_carts,
        decayed_purchases,
        n_views,
        n_carts,
        n_purchases,
        greatest(n_purchases - 1, 0) as repeat_purchases,
        last_ts,
        days_since_last,
        days_since_first,
        days_since_last_purchase,
        n_sessions,
        purchase_gap_days,
        days_since_last_purchase / nullif(purchase_gap_days, 0) as purchase_due,
        n_sessions / nullif(n_user_sessions, 0) as basket_share
    from pairs
)

select * from final
