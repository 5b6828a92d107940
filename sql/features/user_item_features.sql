-- One row per (user, item) pair seen before the cutoff: decayed strength per event type,
-- counts, last interaction, repeat purchases and the user's own cadence for the item (mean
-- days between their purchases of it, and how far into that gap they are now: 1 = due). The per-pair totals are aggregated once in
-- staging/user_items_asof (shared with user and item features).
-- Reads: user_items_asof. Parameters: $as_of.
with pairs as (
    select * from user_items_asof
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
        (days_since_first_purchase - days_since_last_purchase)
        / nullif(n_purchases - 1, 0) as purchase_gap_days,
        days_since_last_purchase
        / nullif(
            (days_since_first_purchase - days_since_last_purchase) / nullif(n_purchases - 1, 0), 0
        ) as purchase_due
    from pairs
)

select * from final
