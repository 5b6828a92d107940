-- Taobao `UserBehavior.csv` -> recpipe events contract.
-- Parameters: $source (path of UserBehavior.csv).
-- Source has NO header; columns are positional: user, item, category, behavior, ts.
--   ts is unix epoch seconds (UTC); written as a naive UTC timestamp.
--   behavior pv / cart / fav / buy -> view / cart / cart / purchase.
--   `fav` (added to favourites) is intent short of buying, the closest contract type is `cart`.
--   Any other behavior value (or an empty one) fails the query instead of being dropped.
with source as (
    select *
    from read_csv(
        $source,
        header = false,
        columns = {
            'user': 'BIGINT',
            'item': 'BIGINT',
            'category': 'VARCHAR',
            'behavior': 'VARCHAR',
            'ts': 'BIGINT'
        }
    )
),

final as (
    select
        cast("user" as bigint) as user_id,
        cast(item as bigint) as item_id,
        case behavior
            when 'pv' then 'view'
            when 'cart' then 'cart'
            when 'fav' then 'cart'
            when 'buy' then 'purchase'
            else error('unknown event value ' || coalesce('''' || behavior || '''', 'NULL'))
        end as event_type,
        make_timestamp(cast(ts as bigint) * 1000000) as ts
    from source
)

select * from final
