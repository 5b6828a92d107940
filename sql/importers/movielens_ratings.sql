-- MovieLens `ratings.csv` -> recpipe events contract.
-- Parameters: $source (path of ratings.csv), $purchase_threshold (rating at or above which
-- a rating counts as a purchase; below it, a view).
-- Source header: userId,movieId,rating,timestamp
--   timestamp is unix epoch seconds (UTC); written as a naive UTC timestamp.
--   A missing rating fails the query instead of being dropped.
with source as (
    select *
    from read_csv(
        $source,
        header = true,
        types = {
            'userId': 'BIGINT',
            'movieId': 'BIGINT',
            'rating': 'DOUBLE',
            'timestamp': 'BIGINT'
        }
    )
),

final as (
    select
        cast(userid as bigint) as user_id,
        cast(movieid as bigint) as item_id,
        case
            when rating is null then error('unknown event value NULL')
            when rating >= $purchase_threshold then 'purchase'
            else 'view'
        end as event_type,
        make_timestamp(cast("timestamp" as bigint) * 1000000) as ts
    from source
)

select * from final
