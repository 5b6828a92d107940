-- How many users have an event in the label window [$start, $end): decides whether a training
-- run stacks earlier windows. Reads: lake_events. Parameters: $start, $end.
select count(distinct user_id) as n_users
from lake_events
where ts >= $start::timestamp and ts < $end::timestamp
