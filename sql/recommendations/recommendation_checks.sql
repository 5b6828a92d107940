-- Per-user aggregates of one recommendation version, validated before publishing.
-- Reads: recs (the version's rows), blocked_items (unavailable or excluded item ids).
-- Scores are stored at the precision they were ranked at, so ranked scores never increase
-- with rank: the order check compares the stored values exactly.
with recs as (
    select * from version_rows
),

ordered as (
    select
        *,
        lag(score) over (
            partition by user_id, source in ('ranker', 'coldstart', 'baseline') order by rank
        ) as prev_score
    from recs
),

final as (
    select
        o.user_id,
        count(*) as n_rows,
        min(o.rank) as min_rank,
        max(o.rank) as max_rank,
        count(distinct o.rank) as n_distinct_ranks,
        count(distinct o.item_id) as n_distinct_items,
        count(b.item_id) as n_unavailable,
        count(*) filter (where o.item_id is null) as n_null_items,
        count(*) filter (
            where o.source in ('ranker', 'coldstart', 'baseline') and o.prev_score is not null
            and o.score > o.prev_score
        ) as n_order_violations
    from ordered as o
    left join blocked_items as b on o.item_id = b.item_id
    group by o.user_id
)

select * from final
