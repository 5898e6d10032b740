// @generated automatically by Diesel CLI.

diesel::table! {
    deletions (id) {
        id -> Uuid,
        user_id -> Uuid,
        requested_at -> Timestamptz,
        erased_at -> Nullable<Timestamptz>,
        pending -> Array<Nullable<Text>>,
    }
}

diesel::table! {
    exports (id) {
        id -> Uuid,
        user_id -> Uuid,
        status -> Text,
        requested_at -> Timestamptz,
        ready_at -> Nullable<Timestamptz>,
        expires_at -> Nullable<Timestamptz>,
        size_bytes -> Nullable<Int8>,
    }
}

diesel::table! {
    login_budgets (subject) {
        subject -> Bytea,
        tokens -> Float8,
        refilled_at -> Timestamptz,
    }
}

diesel::table! {
    login_failures (subject, client) {
        subject -> Bytea,
        client -> Text,
        failures -> Int4,
        last_at -> Timestamptz,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Uuid,
        family_id -> Uuid,
        user_id -> Uuid,
        token_hash -> Bytea,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        rotated_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
        parent_id -> Nullable<Uuid>,
        successor_sealed -> Nullable<Bytea>,
    }
}

diesel::table! {
    revocations (seq) {
        seq -> Int8,
        user_id -> Uuid,
        below_version -> Int8,
        until -> Timestamptz,
        recorded_at -> Timestamptz,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        username -> Text,
        email -> Nullable<Text>,
        password_hash -> Nullable<Text>,
        created_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
        token_version -> Int8,
    }
}

diesel::joinable!(refresh_tokens -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    deletions,
    exports,
    login_budgets,
    login_failures,
    refresh_tokens,
    revocations,
    users,
);
