-- RetailRocket `events.csv` -> recpipe events contract.
-- Parameters: $source (path of events.csv).
-- Source header: timestamp,visitorid,event,itemid,transactionid
--   timestamp is unix epoch milliseconds (UTC); ts is written as a naive UTC timestamp.
--   event view / addtocart / transaction -> view / cart / purchase; any other value
--   (or an empty one) fails the query instead of being dropped.
--   transactionid is an order id, not a session, so it is not carried over.
with source as (
    select *
    from read_csv(
        $source,
        header = true,
        types = {
            'timestamp': 'BIGINT',
            'visitorid': 'BIGINT',
            'event': 'VARCHAR',
            'itemid': 'BIGINT'
        }
    )
),

final as (
    select
        cast(visitorid as bigint) as user_id,
        cast(itemid as bigint) as item_id,
        case event
            when 'view' then 'view'
            when 'addtocart' then 'cart'
            when 'transaction' then 'purchase'
            else error('unknown event value ' || coalesce('''' || event || '''', 'NULL'))
        end as event_type,
        epoch_ms(cast("timestamp" as bigint)) as ts
    from source
)

select * from final
