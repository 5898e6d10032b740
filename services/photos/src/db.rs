//! The photos service's queries, one function per query.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error;
use diesel::sql_types::{
    Array, BigInt, Bool, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// A photo with its blob's facts.
#[derive(Debug, Clone, QueryableByName)]
pub struct PhotoRow {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub owner_id: Uuid,
    #[diesel(sql_type = Text)]
    pub visibility: String,
    #[diesel(sql_type = Array<Text>)]
    pub tags: Vec<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub caption: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub sha256: String,
    #[diesel(sql_type = Text)]
    pub content_type: String,
    #[diesel(sql_type = Integer)]
    pub width: i32,
    #[diesel(sql_type = Integer)]
    pub height: i32,
    #[diesel(sql_type = BigInt)]
    pub size_bytes: i64,
    #[diesel(sql_type = BigInt)]
    pub thumbnail_bytes: i64,
}

const COLUMNS: &str = "p.id, p.owner_id, p.visibility, p.tags, p.caption, p.created_at, \
    b.sha256, b.content_type, b.width, b.height, b.size_bytes, b.thumbnail_bytes";

/// A blob about to be referenced.
#[derive(Debug, Clone)]
pub struct NewBlob {
    pub sha256: String,
    pub content_type: &'static str,
    pub size_bytes: i64,
    pub width: i32,
    pub height: i32,
    pub thumbnail_bytes: i64,
}

/// Serializes every writer of one blob (upload, release, sweep) until the transaction
/// ends: the key is the hash's first 64 bits.
pub async fn lock_blob(conn: &mut AsyncPgConnection, sha256: &str) -> Result<(), Error> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(('x' || substr($1, 1, 16))::bit(64)::bigint)")
        .bind::<Text, _>(sha256)
        .execute(conn)
        .await
        .map(drop)
}

#[derive(QueryableByName)]
struct Refs {
    #[diesel(sql_type = Integer)]
    refs: i32,
}

/// How many photos use a blob (`None`: no such row). Call under [`lock_blob`].
pub async fn blob_refs(conn: &mut AsyncPgConnection, sha256: &str) -> Result<Option<i32>, Error> {
    diesel::sql_query("SELECT refs FROM blobs WHERE sha256 = $1")
        .bind::<Text, _>(sha256)
        .get_result::<Refs>(conn)
        .await
        .optional()
        .map(|r| r.map(|r| r.refs))
}

/// Counts one more photo on a blob, creating its row. Call under [`lock_blob`], after
/// the bytes are stored.
pub async fn reference_blob(conn: &mut AsyncPgConnection, blob: &NewBlob) -> Result<(), Error> {
    diesel::sql_query(
        "INSERT INTO blobs (sha256, content_type, size_bytes, width, height, thumbnail_bytes, refs) \
         VALUES ($1, $2, $3, $4, $5, $6, 1) \
         ON CONFLICT (sha256) DO UPDATE SET refs = blobs.refs + 1",
    )
    .bind::<Text, _>(&blob.sha256)
    .bind::<Text, _>(blob.content_type)
    .bind::<BigInt, _>(blob.size_bytes)
    .bind::<Integer, _>(blob.width)
    .bind::<Integer, _>(blob.height)
    .bind::<BigInt, _>(blob.thumbnail_bytes)
    .execute(conn)
    .await
    .map(drop)
}

/// Counts one photo less on a blob; the remaining count.
pub async fn release_blob(conn: &mut AsyncPgConnection, sha256: &str) -> Result<i32, Error> {
    diesel::sql_query("UPDATE blobs SET refs = refs - 1 WHERE sha256 = $1 RETURNING refs")
        .bind::<Text, _>(sha256)
        .get_result::<Refs>(conn)
        .await
        .map(|r| r.refs)
}

/// Forgets a blob nobody uses. Call under [`lock_blob`], after its bytes are deleted.
pub async fn forget_blob(conn: &mut AsyncPgConnection, sha256: &str) -> Result<(), Error> {
    diesel::sql_query("DELETE FROM blobs WHERE sha256 = $1 AND refs = 0")
        .bind::<Text, _>(sha256)
        .execute(conn)
        .await
        .map(drop)
}

#[derive(QueryableByName)]
struct Sha {
    #[diesel(sql_type = Text)]
    sha256: String,
}

/// Blobs no photo uses (left by an interrupted deletion).
pub async fn unreferenced_blobs(conn: &mut AsyncPgConnection) -> Result<Vec<String>, Error> {
    diesel::sql_query("SELECT sha256 FROM blobs WHERE refs = 0 LIMIT 1000")
        .load::<Sha>(conn)
        .await
        .map(|rows| rows.into_iter().map(|r| r.sha256).collect())
}

/// Stores a photo of a referenced blob.
pub async fn insert_photo(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    owner: Uuid,
    sha256: &str,
    visibility: &str,
    tags: &[String],
    caption: Option<&str>,
) -> Result<(), Error> {
    diesel::sql_query(
        "INSERT INTO photos (id, owner_id, sha256, visibility, tags, caption) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<SqlUuid, _>(owner)
    .bind::<Text, _>(sha256)
    .bind::<Text, _>(visibility)
    .bind::<Array<Text>, _>(tags)
    .bind::<Nullable<Text>, _>(caption)
    .execute(conn)
    .await
    .map(drop)
}

/// One photo.
pub async fn photo(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<PhotoRow>, Error> {
    diesel::sql_query(format!(
        "SELECT {COLUMNS} FROM photos p JOIN blobs b ON b.sha256 = p.sha256 WHERE p.id = $1"
    ))
    .bind::<SqlUuid, _>(id)
    .get_result(conn)
    .await
    .optional()
}

/// Changes the given fields (`caption: Some(None)` clears it).
pub async fn update_photo(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    visibility: Option<&str>,
    tags: Option<&[String]>,
    caption: Option<Option<&str>>,
) -> Result<(), Error> {
    diesel::sql_query(
        "UPDATE photos SET visibility = COALESCE($2, visibility), tags = COALESCE($3, tags), \
         caption = CASE WHEN $4 THEN $5 ELSE caption END WHERE id = $1",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Nullable<Text>, _>(visibility)
    .bind::<Nullable<Array<Text>>, _>(tags)
    .bind::<diesel::sql_types::Bool, _>(caption.is_some())
    .bind::<Nullable<Text>, _>(caption.flatten())
    .execute(conn)
    .await
    .map(drop)
}

/// Deletes an owner's photo; the blob it used.
pub async fn delete_photo(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    owner: Uuid,
) -> Result<Option<String>, Error> {
    diesel::sql_query("DELETE FROM photos WHERE id = $1 AND owner_id = $2 RETURNING sha256")
        .bind::<SqlUuid, _>(id)
        .bind::<SqlUuid, _>(owner)
        .get_result::<Sha>(conn)
        .await
        .optional()
        .map(|r| r.map(|r| r.sha256))
}

/// Public photos per tag, for the given tags (a tag on no public photo is absent).
async fn tag_frequencies(
    conn: &mut AsyncPgConnection,
    tags: &[String],
) -> Result<Vec<(String, i64)>, Error> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        tag: String,
        #[diesel(sql_type = BigInt)]
        public_photos: i64,
    }
    diesel::sql_query(
        "SELECT tag, public_photos FROM tag_counts WHERE tag = ANY($1) AND public_photos > 0",
    )
    .bind::<Array<Text>, _>(tags)
    .load::<Row>(conn)
    .await
    .map(|rows| rows.into_iter().map(|r| (r.tag, r.public_photos)).collect())
}

/// Public photos having every tag, newest first, after `after`: walks the rarest tag's
/// index in id order and checks the other tags by primary key (see the migration).
pub async fn search_public(
    conn: &mut AsyncPgConnection,
    tags: &[String],
    hidden_owners: &[Uuid],
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<PhotoRow>, Error> {
    if tags.is_empty() {
        return diesel::sql_query(format!(
            "SELECT {COLUMNS} FROM photos p JOIN blobs b ON b.sha256 = p.sha256 \
             WHERE p.visibility = 'public' AND ($1::uuid IS NULL OR p.id < $1) \
               AND p.owner_id <> ALL($3) \
             ORDER BY p.id DESC LIMIT $2"
        ))
        .bind::<Nullable<SqlUuid>, _>(after)
        .bind::<BigInt, _>(limit)
        .bind::<Array<SqlUuid>, _>(hidden_owners)
        .load(conn)
        .await;
    }
    let mut frequencies = tag_frequencies(conn, tags).await?;
    if frequencies.len() < tags.len() {
        return Ok(Vec::new()); // some tag is on no public photo
    }
    frequencies.sort_by_key(|(_, n)| *n);
    let rarest = frequencies[0].0.clone();
    let others: Vec<String> = frequencies.into_iter().skip(1).map(|(t, _)| t).collect();
    diesel::sql_query(format!(
        "SELECT {COLUMNS} FROM photo_tags t \
         JOIN photos p ON p.id = t.photo_id JOIN blobs b ON b.sha256 = p.sha256 \
         WHERE t.tag = $1 AND ($2::uuid IS NULL OR t.photo_id < $2) \
           AND (SELECT count(*) FROM photo_tags o \
                WHERE o.photo_id = t.photo_id AND o.tag = ANY($3)) = cardinality($3) \
           AND p.owner_id <> ALL($5) \
         ORDER BY t.photo_id DESC LIMIT $4"
    ))
    .bind::<Text, _>(&rarest)
    .bind::<Nullable<SqlUuid>, _>(after)
    .bind::<Array<Text>, _>(&others)
    .bind::<BigInt, _>(limit)
    .bind::<Array<SqlUuid>, _>(hidden_owners)
    .load(conn)
    .await
}

/// An owner's photos (any visibility) having every tag, newest first.
pub async fn owner_photos(
    conn: &mut AsyncPgConnection,
    owner: Uuid,
    tags: &[String],
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<PhotoRow>, Error> {
    diesel::sql_query(format!(
        "SELECT {COLUMNS} FROM photos p JOIN blobs b ON b.sha256 = p.sha256 \
         WHERE p.owner_id = $1 AND p.tags @> $2 AND ($3::uuid IS NULL OR p.id < $3) \
         ORDER BY p.id DESC LIMIT $4"
    ))
    .bind::<SqlUuid, _>(owner)
    .bind::<Array<Text>, _>(tags)
    .bind::<Nullable<SqlUuid>, _>(after)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
}

/// Public tags starting with `prefix` (`[a-z0-9_-]` only), most used first.
pub async fn tags_with_prefix(
    conn: &mut AsyncPgConnection,
    prefix: &str,
    limit: i64,
) -> Result<Vec<(String, i64)>, Error> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        tag: String,
        #[diesel(sql_type = BigInt)]
        public_photos: i64,
    }
    // `_` is a LIKE wildcard; the prefix has no other special character.
    let pattern = format!("{}%", prefix.replace('_', "\\_"));
    diesel::sql_query(
        "SELECT tag, public_photos FROM tag_counts \
         WHERE tag LIKE $1 AND public_photos > 0 \
         ORDER BY public_photos DESC, tag LIMIT $2",
    )
    .bind::<Text, _>(pattern)
    .bind::<BigInt, _>(limit)
    .load::<Row>(conn)
    .await
    .map(|rows| rows.into_iter().map(|r| (r.tag, r.public_photos)).collect())
}

/// A photo someone may use, with what decides where.
#[derive(QueryableByName)]
pub struct UsableRow {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub owner_id: Uuid,
    #[diesel(sql_type = Bool)]
    pub public: bool,
}

/// Which of `ids` `owner` may use: their own photos and public ones.
pub async fn usable(
    conn: &mut AsyncPgConnection,
    owner: Uuid,
    ids: &[Uuid],
) -> Result<Vec<UsableRow>, Error> {
    diesel::sql_query(
        "SELECT id, owner_id, visibility = 'public' AS public FROM photos \
         WHERE id = ANY($1) AND (owner_id = $2 OR visibility = 'public')",
    )
    .bind::<Array<SqlUuid>, _>(ids)
    .bind::<SqlUuid, _>(owner)
    .load(conn)
    .await
}

/// Erases every photo of `person` (call it in a transaction; their tags and the public
/// tag counts follow through the trigger) and releases their blobs, in a fixed order
/// so that two erasures sharing bytes cannot deadlock. Returns the blobs no photo uses
/// any more (their bytes are deleted after the commit). Idempotent.
pub async fn erase_person(
    conn: &mut AsyncPgConnection,
    person: Uuid,
) -> Result<Vec<String>, Error> {
    use crate::schema::photos;
    let mut shas: Vec<String> = diesel::delete(photos::table.filter(photos::owner_id.eq(person)))
        .returning(photos::sha256)
        .get_results(conn)
        .await?;
    shas.sort();
    let mut released = Vec::new();
    for sha in &shas {
        lock_blob(conn, sha).await?;
        if release_blob(conn, sha).await? == 0 {
            released.push(sha.clone());
        }
    }
    released.dedup();
    Ok(released)
}

/// The blob of `owner`'s photo `id` (`None`: no such photo of theirs).
pub async fn owned_sha256(
    conn: &mut AsyncPgConnection,
    owner: Uuid,
    id: Uuid,
) -> Result<Option<String>, Error> {
    use crate::schema::photos;
    photos::table
        .find(id)
        .filter(photos::owner_id.eq(owner))
        .select(photos::sha256)
        .first(conn)
        .await
        .optional()
}
