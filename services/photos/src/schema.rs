// @generated automatically by Diesel CLI.

diesel::table! {
    blobs (sha256) {
        sha256 -> Text,
        content_type -> Text,
        size_bytes -> Int8,
        width -> Int4,
        height -> Int4,
        thumbnail_bytes -> Int8,
        refs -> Int4,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    photo_tags (tag, photo_id) {
        tag -> Text,
        photo_id -> Uuid,
    }
}

diesel::table! {
    photos (id) {
        id -> Uuid,
        owner_id -> Uuid,
        sha256 -> Text,
        visibility -> Text,
        tags -> Array<Nullable<Text>>,
        caption -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    tag_counts (tag) {
        tag -> Text,
        public_photos -> Int8,
    }
}

diesel::joinable!(photo_tags -> photos (photo_id));
diesel::joinable!(photos -> blobs (sha256));

diesel::allow_tables_to_appear_in_same_query!(blobs, photo_tags, photos, tag_counts,);
