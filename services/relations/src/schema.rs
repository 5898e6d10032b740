// @generated automatically by Diesel CLI.

diesel::table! {
    accounts (id) {
        id -> Uuid,
        username -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    blocks (blocker_id, blocked_id) {
        blocker_id -> Uuid,
        blocked_id -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    declined_requests (from_id, to_id) {
        from_id -> Uuid,
        to_id -> Uuid,
        declined_at -> Timestamptz,
    }
}

diesel::table! {
    follows (follower_id, followee_id) {
        follower_id -> Uuid,
        followee_id -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    friend_requests (id) {
        id -> Uuid,
        from_id -> Uuid,
        to_id -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    friendships (user_id, friend_id) {
        user_id -> Uuid,
        friend_id -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    likes (liker_id, likee_id) {
        liker_id -> Uuid,
        likee_id -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    matches (user_id, other_id) {
        user_id -> Uuid,
        other_id -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    accounts,
    blocks,
    declined_requests,
    follows,
    friend_requests,
    friendships,
    likes,
    matches,
);
