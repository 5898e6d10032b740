// @generated automatically by Diesel CLI.

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
    users (id) {
        id -> Uuid,
        username -> Text,
        email -> Text,
        password_hash -> Text,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(refresh_tokens -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(login_budgets, login_failures, refresh_tokens, users,);
