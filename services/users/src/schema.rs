// @generated automatically by Diesel CLI.

diesel::table! {
    comments (id) {
        id -> Uuid,
        post_id -> Uuid,
        parent_id -> Nullable<Uuid>,
        author_id -> Uuid,
        text -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    posts (id) {
        id -> Uuid,
        author_id -> Uuid,
        text -> Text,
        links -> Array<Nullable<Text>>,
        photo_ids -> Array<Nullable<Uuid>>,
        visibility -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        comment_count -> Int8,
        reaction_counts -> Jsonb,
    }
}

diesel::table! {
    profiles (id) {
        id -> Uuid,
        username -> Text,
        display_name -> Nullable<Text>,
        bio -> Nullable<Text>,
        avatar_url -> Nullable<Text>,
        location -> Nullable<Text>,
        website -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        public_posts -> Int8,
        friends_posts -> Int8,
        private_posts -> Int8,
    }
}

diesel::table! {
    reactions (post_id, user_id, emoji) {
        post_id -> Uuid,
        user_id -> Uuid,
        emoji -> Text,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(comments -> posts (post_id));
diesel::joinable!(comments -> profiles (author_id));
diesel::joinable!(posts -> profiles (author_id));
diesel::joinable!(reactions -> posts (post_id));
diesel::joinable!(reactions -> profiles (user_id));

diesel::allow_tables_to_appear_in_same_query!(comments, posts, profiles, reactions,);
