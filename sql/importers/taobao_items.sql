-- Taobao `UserBehavior.csv` -> recpipe items contract (item_id, category).
-- Parameters: $source (path of UserBehavior.csv).
-- Source has NO header; columns are positional: user, item, category, behavior, ts.
--   One row per item; category is kept as a string. Should an item appear under several
--   categories, the one seen at its latest event wins (ties: the greatest category).
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
        cast(item as bigint) as item_id,
        first(cast(category as varchar) order by ts desc, category desc) as category
    from source
    group by item
    order by item_id
)

select * from final
