-- One row per item known at the cutoff (catalogue items created before it, plus items seen in
-- events): popularity per window, funnel conversion, trend, age, availability, repeat-buying.
-- Availability is the catalogue's current flag (a snapshot, not point-in-time). Distinct users
-- and buyers come from the per-pair totals (a user was active in a window exactly when their
-- latest event with the item is inside it).
-- Reads: events_asof, user_items_asof, catalog. Parameters: $as_of.
with events as (
    select * from events_asof
),

items as (
    select item_id, category, brand, price, available, created_at
    from catalog
    where created_at is null or created_at < $as_of::timestamp
),

event_stats as (
    select
        item_id,
        count(*) filter (where event_type = 'view') as n_view_all,
        count(*) filter (where event_type = 'cart') as n_cart_all,
        count(*) filter (where event_type = 'purchase') as n_purchase_all,
        count(*) filter (where event_type = 'purchase' and age_days < 7) as n_purchase_7d,
        sum(weight * decay) as decayed_popularity,
        min(ts) as first_event_ts,
        max(ts) as last_event_ts
    from events
    group by item_id
),

-- the category an item's events carry: the catalogue's (whenever the item was created), else
-- 'unknown'
stats as (
    select s.*, coalesce(c.category, 'unknown') as event_category
    from event_stats as s
    left join catalog as c on s.item_id = c.item_id
),

audience as (
    select
        item_id,
        count(user_id) as n_users_all,
        count(user_id) filter (where days_since_last < 30) as n_users_30d,
        count(user_id) filter (where days_since_last < 7) as n_users_7d,
        count(user_id) filter (where days_since_last < 1) as n_users_1d
    from user_items_asof
    group by item_id
),

buys as (
    select p.user_id, p.item_id, s.event_category as category, p.n_purchases as n
    from user_items_asof as p
    inner join stats as s on p.item_id = s.item_id
    where p.n_purchases > 0
),

buyers as (
    select
        item_id,
        count(*) as n_buyers,
        count(*) filter (where n >= 2) as n_repeat_buyers
    from buys
    group by item_id
),

category_repeat as (
    select
        category,
        count(*) filter (where n >= 2) / count(*) as category_repeat_rate
    from buys
    group by category
),

universe as (
    select item_id from items
    union
    select item_id from stats
),

joined as (
    select
        u.item_id,
        coalesce(i.category, s.event_category, 'unknown') as category,
        i.price,
        coalesce(i.available, true) as available,
        coalesce(i.created_at, s.first_event_ts) as born_ts,
        coalesce(a.n_users_all, 0) as n_users_all,
        coalesce(a.n_users_30d, 0) as n_users_30d,
        coalesce(a.n_users_7d, 0) as n_users_7d,
        coalesce(a.n_users_1d, 0) as n_users_1d,
        coalesce(s.n_view_all, 0) as n_view_all,
        coalesce(s.n_cart_all, 0) as n_cart_all,
        coalesce(s.n_purchase_all, 0) as n_purchase_all,
        coalesce(s.n_purchase_7d, 0) as n_purchase_7d,
        coalesce(s.decayed_popularity, 0.0) as decayed_popularity,
        s.last_event_ts,
        coalesce(b.n_buyers, 0) as n_buyers,
        coalesce(b.n_repeat_buyers, 0) as n_repeat_buyers
    from universe as u
    left join items as i on u.item_id = i.item_id
    left join stats as s on u.item_id = s.item_id
    left join audience as a on u.item_id = a.item_id
    left join buyers as b on u.item_id = b.item_id
),

final as (
    select
        j.item_id,
        $as_of::timestamp as as_of,
        j.category,
        j.price,
        j.available,
        j.n_users_all,
        j.n_users_30d,
        j.n_users_7d,
        j.n_users_1d,
        j.n_view_all,
        j.n_cart_all,
        j.n_purchase_all,
        j.n_purchase_7d,
        j.decayed_popularity,
        (j.n_cart_all + 1.0) / (j.n_view_all + 10.0) as cart_rate,
        (j.n_purchase_all + 0.5) / (j.n_cart_all + 2.0) as cart_to_purchase_rate,
        (j.n_purchase_all + 0.1) / (j.n_view_all + 10.0) as purchase_rate,
        j.n_users_7d / (j.n_users_30d * 7.0 / 30.0 + 1.0) as trend,
        date_diff('millisecond', j.born_ts, $as_of::timestamp) / 86400000.0 as age_days,
        date_diff('millisecond', j.last_event_ts, $as_of::timestamp) / 86400000.0
            as days_since_last_event,
        j.n_repeat_buyers / greatest(j.n_buyers, 1) as repeat_buyer_share,
        coalesce(c.category_repeat_rate, 0.0) as category_repeat_rate
    from joined as j
    left join category_repeat as c on j.category = c.category
)

select * from final
