-- One row per (user, item) with events in the label window [$start, $end): the best grade
-- reached (e.g. view 1 < cart 2 < purchase 3). Reads: lake_events. Parameters: $start, $end,
-- $event_types, $event_grades.
with events as (
    select user_id, item_id, event_type
    from lake_events
    where ts >= $start::timestamp and ts < $end::timestamp
),

final as (
    select
        e.user_id,
        e.item_id,
        $start::timestamp as window_start,
        $end::timestamp as window_end,
        -- the grade looked up by position (a join on the few types built its hash table on
        -- the events side)
        max(coalesce(
            ($event_grades::integer[])[list_position($event_types::varchar[], e.event_type)], 1
        )) as grade,
        count(*) as n_events
    from events as e
    group by e.user_id, e.item_id
)

select * from final
