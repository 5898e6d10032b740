// @generated automatically by Diesel CLI.

diesel::table! {
    causes (cause_key) {
        cause_key -> Text,
        notice_id -> Uuid,
        active -> Bool,
        at -> Timestamptz,
    }
}

diesel::table! {
    notification_causes (notification_id, cause_key) {
        notification_id -> Uuid,
        cause_key -> Text,
        actor_id -> Uuid,
        actor_username -> Text,
        at -> Timestamptz,
    }
}

diesel::table! {
    notifications (id) {
        id -> Uuid,
        recipient -> Uuid,
        kind -> Text,
        group_key -> Text,
        subject_type -> Text,
        subject_id -> Uuid,
        post_id -> Nullable<Uuid>,
        photo_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        read_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    open_streams (id) {
        id -> Uuid,
        user_id -> Uuid,
        seen_at -> Timestamptz,
    }
}

diesel::table! {
    preferences (user_id) {
        user_id -> Uuid,
        muted_kinds -> Array<Nullable<Text>>,
    }
}

diesel::table! {
    stream_events (seq) {
        seq -> Int8,
        recipient -> Uuid,
        item -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    stream_tickets (hash) {
        hash -> Bytea,
        user_id -> Uuid,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    tombstones (subject_id) {
        subject_id -> Uuid,
        at -> Timestamptz,
    }
}

diesel::joinable!(notification_causes -> notifications (notification_id));

diesel::allow_tables_to_appear_in_same_query!(
    causes,
    notification_causes,
    notifications,
    open_streams,
    preferences,
    stream_events,
    stream_tickets,
    tombstones,
);
