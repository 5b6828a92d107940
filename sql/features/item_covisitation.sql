-- Item pairs seen together in a session (session_id, or a gap-based session when absent) in
-- the last $covis_days days before the cutoff; top $top_n neighbours per item by a decayed
-- co-occurrence score. Sessions are capped at their $max_session_items latest items.
-- Reads: events_asof. Parameters: $as_of, $covis_days, $top_n, $max_session_items.
with events as (
    select session_key, item_id, max(ts) as ts, max(decay) as decay
    from events_asof
    where age_days < $covis_days
    group by session_key, item_id
),

session_sizes as (
    select session_key, count(*) as n_items
    from events
    group by session_key
),

-- single-item sessions make no pair; only the few sessions over the cap need ranking
multi_item as (
    select e.session_key, e.item_id, e.ts, e.decay, s.n_items
    from events as e
    inner join session_sizes as s on e.session_key = s.session_key
    where s.n_items >= 2
),

capped as (
    select session_key, item_id, decay
    from multi_item
    where n_items <= $max_session_items
    union all
    select session_key, item_id, decay
    from multi_item
    where n_items > $max_session_items
    qualify row_number() over (partition by session_key order by ts desc, item_id)
        <= $max_session_items
),

-- a pair's count and score are symmetric: aggregate each unordered pair once, emit both ways.
-- fsum (compensated) makes the score independent of summation order, so pairs that tie get
-- the same score and their ranks follow the tie-break, not thread scheduling.
unordered_pairs as (
    select
        a.item_id,
        b.item_id as other_item_id,
        count(*) as n_sessions,
        fsum(least(a.decay, b.decay)) as score
    from capped as a
    inner join capped as b on a.session_key = b.session_key and a.item_id < b.item_id
    group by a.item_id, b.item_id
),

pairs as (
    select item_id, other_item_id, n_sessions, score from unordered_pairs
    union all
    select other_item_id as item_id, item_id as other_item_id, n_sessions, score
    from unordered_pairs
),

final as (
    select
        item_id,
        other_item_id,
        $as_of::timestamp as as_of,
        n_sessions,
        score,
        row_number() over (
            partition by item_id order by score desc, n_sessions desc, other_item_id
        ) as neighbour_rank
    from pairs
    qualify neighbour_rank <= $top_n
)

select * from final
