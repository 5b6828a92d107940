-- One row per (user, category) before the cutoff: time-decayed share of the user's interest,
-- long-term (all-time, undecayed) and short-term (last $short_days days) shares, and their
-- difference, the drift signal. Events of items missing from the catalogue count as 'unknown'.
-- Reads: events_asof, catalog. Parameters: $as_of, $short_days.
with events as (
    select
        e.user_id,
        coalesce(c.category, 'unknown') as category,
        e.weight,
        e.decay,
        e.age_days,
        e.ts
    from events_asof as e
    left join catalog as c on e.item_id = c.item_id
),

per_category as (
    select
        user_id,
        category,
        sum(weight * decay) as decayed_weight,
        sum(weight) as weight_all,
        coalesce(sum(weight) filter (where age_days < $short_days), 0.0) as weight_short,
        max(ts) as last_ts
    from events
    group by user_id, category
),

totals as (
    select
        user_id,
        sum(decayed_weight) as decayed_total,
        sum(weight_all) as all_total,
        sum(weight_short) as short_total
    from per_category
    group by user_id
),

final as (
    select
        p.user_id,
        p.category,
        $as_of::timestamp as as_of,
        p.decayed_weight,
        p.decayed_weight / nullif(t.decayed_total, 0) as decayed_share,
        p.weight_all / nullif(t.all_total, 0) as long_share,
        p.weight_short / nullif(t.short_total, 0) as short_share,
        p.weight_short / nullif(t.short_total, 0) - p.weight_all / nullif(t.all_total, 0) as drift,
        row_number() over (
            partition by p.user_id order by p.decayed_weight desc, p.category
        ) as category_rank
    from per_category as p
    inner join totals as t on p.user_id = t.user_id
)

select * from final
