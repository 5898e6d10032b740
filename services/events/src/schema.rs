// @generated automatically by Diesel CLI.

diesel::table! {
    events (id) {
        id -> Uuid,
        organizer_id -> Uuid,
        organizer_username -> Text,
        title -> Text,
        description -> Nullable<Text>,
        starts_at -> Timestamptz,
        ends_at -> Nullable<Timestamptz>,
        location -> Nullable<Text>,
        visibility -> Text,
        going -> Int4,
        interested -> Int4,
        not_going -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    rsvps (event_id, user_id) {
        event_id -> Uuid,
        user_id -> Uuid,
        username -> Text,
        status -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(rsvps -> events (event_id));

diesel::allow_tables_to_appear_in_same_query!(events, rsvps,);
