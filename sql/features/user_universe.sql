-- Every user to score at the cutoff: users with events before it, plus users from the users
-- file who signed up before it (or have no signup time), even without events.
-- Reads: events_asof, known_users. Parameters: $as_of.
with active as (
    select user_id, count(*) as n_events from events_asof group by user_id
),

listed as (
    select distinct user_id
    from known_users
    where user_id is not null and (signup_ts is null or signup_ts < $as_of::timestamp)
),

final as (
    select
        coalesce(a.user_id, l.user_id) as user_id,
        $as_of::timestamp as as_of,
        coalesce(a.n_events, 0) as n_events
    from active as a
    full outer join listed as l on a.user_id = l.user_id
)

select * from final
