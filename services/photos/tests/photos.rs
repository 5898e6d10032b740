//! The photos service against a real PostgreSQL and a real storage directory: uploads
//! and their refusals, metadata stripping, serving with ETags, visibility, share links,
//! deduplication and deletion of bytes, tag search and the internal usability check.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

use agora_common::client::ServiceToken;
use agora_common::config::ServiceBasics;
use agora_common::testing::{self, TestKeys};
use agora_photos::imaging::DecodeLimits;
use agora_photos::links::LinkSigner;
use agora_photos::storage::{S3Config, StorageConfig};
use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, Rgb, RgbImage};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::PathBuf;
use uuid::Uuid;

const INTERNAL: &str = "photos-test-internal-token-0123456789";
const LINK_KEY: &[u8] = b"photos-test-share-link-key-0123456789abcdef";
const MAX_UPLOAD: usize = 256 * 1024;

struct Harness {
    api: String,
    keys: TestKeys,
    http: reqwest::Client,
    dir: PathBuf,
    /// A storage directory of the test's own, removed with it (an S3 prefix's files
    /// belong to the S3 server's root, which `hack/test.sh` removes).
    owned: bool,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if self.owned {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

struct User {
    id: Uuid,
    token: String,
}

struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    bytes: Vec<u8>,
    body: Value,
}

/// The service storing photos in a fresh local directory.
async fn start() -> Harness {
    let dir = std::env::temp_dir().join(format!("agora-photos-test-{}", Uuid::now_v7()));
    let mut harness = start_with(StorageConfig::Directory(dir.clone()), dir).await;
    harness.owned = true;
    harness
}

/// The service storing photos in the real S3-compatible server `hack/test.sh` starts
/// (versitygw: `hack/s3-server.sh`), under a fresh key prefix; `dir` is where that
/// server's posix backend keeps those objects, so tests can count them.
async fn start_s3() -> Harness {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is unset: run the tests with hack/test.sh, or eval \"$(hack/s3-server.sh start)\"")
        })
    };
    let bucket = var("AGORA_TEST_S3_BUCKET");
    let prefix = format!("test-{}", Uuid::now_v7());
    let dir = PathBuf::from(var("AGORA_TEST_S3_ROOT"))
        .join("root")
        .join(&bucket)
        .join(&prefix);
    let storage = StorageConfig::S3(S3Config {
        bucket,
        endpoint: Some(var("AGORA_TEST_S3_ENDPOINT")),
        region: None,
        prefix: Some(prefix),
        access_key_id: var("AGORA_TEST_S3_ACCESS_KEY"),
        secret_access_key: var("AGORA_TEST_S3_SECRET_KEY"),
    });
    start_with(storage, dir).await
}

async fn start_with(storage: StorageConfig, dir: PathBuf) -> Harness {
    let keys = TestKeys::new();
    let config = agora_photos::Config {
        basics: ServiceBasics {
            database_url: testing::fresh_database("photos").await,
            db_pool_size: 10,
            jwks_url: "http://127.0.0.1:9/unused".into(),
            issuer: "agora".into(),
            audience: "agora".into(),
            service_token: ServiceToken::new(INTERNAL).unwrap(),
        },
        storage,
        share_link_key: LINK_KEY.to_vec(),
        max_upload: MAX_UPLOAD,
        limits: DecodeLimits::default(),
        decode_concurrency: 2,
        relations_url: None,
    };
    let service = agora_photos::build_with(config, keys.verifier())
        .await
        .unwrap();
    let server = testing::serve(service);
    Harness {
        api: server.api,
        keys,
        http: reqwest::Client::new(),
        dir,
        owned: false,
    }
}

/// A JPEG of `width`×`height` whose pixels depend on `seed`.
fn jpeg(width: u32, height: u32, seed: u8) -> Vec<u8> {
    let img = RgbImage::from_fn(width, height, |x, y| {
        Rgb([(x % 256) as u8 ^ seed, (y % 256) as u8, seed])
    });
    let mut out = Vec::new();
    DynamicImage::ImageRgb8(img)
        .write_with_encoder(JpegEncoder::new_with_quality(&mut out, 90))
        .unwrap();
    out
}

/// A multipart body of `(name, filename, bytes)` parts, and its content type.
fn form(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "agora-test-boundary-7d1f";
    let mut body = Vec::new();
    for (name, filename, bytes) in parts {
        body.extend(format!("--{boundary}\r\n").as_bytes());
        let disposition = match filename {
            Some(f) => format!(
                "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            ),
            None => format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"),
        };
        body.extend(disposition.as_bytes());
        body.extend(*bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

impl Harness {
    fn user(&self) -> User {
        let id = Uuid::now_v7();
        User {
            token: self
                .keys
                .token(id, &format!("u{}", &id.simple().to_string()[20..])),
            id,
        }
    }

    async fn send(
        &self,
        who: Option<&User>,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(String, Vec<u8>)>,
    ) -> Reply {
        let mut req = self.http.request(method, format!("{}{path}", self.api));
        if let Some(who) = who {
            req = req.bearer_auth(&who.token);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some((content_type, bytes)) = body {
            req = req.header("content-type", content_type).body(bytes);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap().to_vec();
        Reply {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            bytes,
        }
    }

    async fn get(&self, who: Option<&User>, path: &str) -> Reply {
        self.send(who, Method::GET, path, &[], None).await
    }

    async fn json(&self, who: &User, method: Method, path: &str, body: Value) -> Reply {
        self.send(
            Some(who),
            method,
            path,
            &[],
            Some(("application/json".into(), body.to_string().into_bytes())),
        )
        .await
    }

    async fn upload(&self, who: &User, file: &[u8], visibility: &str, tags: &str) -> Reply {
        let (ct, body) = form(&[
            ("file", Some("x.bin"), file),
            ("visibility", None, visibility.as_bytes()),
            ("tags", None, tags.as_bytes()),
            ("caption", None, "a caption".as_bytes()),
        ]);
        self.send(
            Some(who),
            Method::POST,
            "/api/v1/photos",
            &[],
            Some((ct, body)),
        )
        .await
    }

    async fn uploaded(&self, who: &User, file: &[u8], visibility: &str, tags: &str) -> Value {
        let r = self.upload(who, file, visibility, tags).await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body
    }

    /// Stored files (content and thumbnails).
    fn stored(&self) -> usize {
        ["content", "thumbnails"]
            .iter()
            .map(|d| std::fs::read_dir(self.dir.join(d)).map_or(0, |e| e.count()))
            .sum()
    }
}

fn problem(r: &Reply, status: u16) {
    assert_eq!(r.status.as_u16(), status, "{}", r.body);
    assert_eq!(
        r.headers["content-type"].to_str().unwrap(),
        "application/problem+json",
        "{}",
        r.body
    );
}

/// PNG's chunk checksum (CRC-32, IEEE).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn id_of(photo: &Value) -> String {
    photo["id"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn upload_serve_deduplicate_and_delete() {
    upload_serve_deduplicate_and_delete_in(start().await).await;
}

#[actix_web::test]
async fn upload_serve_deduplicate_and_delete_in_s3() {
    upload_serve_deduplicate_and_delete_in(start_s3().await).await;
}

async fn upload_serve_deduplicate_and_delete_in(h: Harness) {
    let (alice, bob) = (h.user(), h.user());
    let file = jpeg(800, 400, 1);
    let photo = h.uploaded(&alice, &file, "public", "sea,sunset").await;
    assert_eq!(photo["owner_id"], json!(alice.id));
    assert_eq!(photo["visibility"], "public");
    assert_eq!(photo["tags"], json!(["sea", "sunset"]));
    assert_eq!(photo["caption"], "a caption");
    assert_eq!(photo["content_type"], "image/jpeg");
    assert_eq!(photo["width"], 800);
    assert_eq!(photo["height"], 400);
    let id = id_of(&photo);
    let url = format!("/api/v1/photos/{id}/content");
    assert_eq!(photo["url"], url);
    assert_eq!(
        photo["thumbnail_url"],
        format!("/api/v1/photos/{id}/thumbnail")
    );

    // Public bytes need no token; the ETag is the stored bytes' SHA-256.
    let content = h.get(None, &url).await;
    assert_eq!(content.status, 200);
    assert_eq!(content.headers["content-type"], "image/jpeg");
    // Cacheable, but revalidated on every use: a switch to private applies at once.
    assert_eq!(content.headers["cache-control"], "public, no-cache");
    assert_eq!(
        content.headers["content-length"].to_str().unwrap(),
        photo["size_bytes"].to_string()
    );
    use sha2::Digest;
    assert_eq!(
        agora_keys::to_hex(&sha2::Sha256::digest(&content.bytes)),
        photo["sha256"].as_str().unwrap()
    );
    let etag = content.headers["etag"].to_str().unwrap().to_owned();
    let again = h
        .send(None, Method::GET, &url, &[("if-none-match", &etag)], None)
        .await;
    assert_eq!(again.status, 304);
    assert!(again.bytes.is_empty());
    let thumb = h.get(None, &format!("/api/v1/photos/{id}/thumbnail")).await;
    assert_eq!(thumb.status, 200);
    let t = image::load_from_memory(&thumb.bytes).unwrap();
    assert_eq!((t.width(), t.height()), (320, 160));
    assert_ne!(thumb.headers["etag"], content.headers["etag"]);

    // The same bytes from someone else: a photo of their own, stored once.
    let copy = h.uploaded(&bob, &file, "private", "").await;
    assert_ne!(copy["id"], photo["id"]);
    assert_eq!(copy["sha256"], photo["sha256"]);
    assert_eq!(h.stored(), 2, "one content file and one thumbnail");

    // Only the owner deletes; the other photo of the bytes keeps them.
    let path = format!("/api/v1/photos/{id}");
    problem(
        &h.send(Some(&bob), Method::DELETE, &path, &[], None).await,
        403,
    );
    let gone = h.send(Some(&alice), Method::DELETE, &path, &[], None).await;
    assert_eq!(gone.status, 204);
    problem(&h.get(None, &url).await, 404);
    problem(&h.get(Some(&alice), &path).await, 404);
    let copy_url = copy["url"].as_str().unwrap();
    assert_eq!(h.get(Some(&bob), copy_url).await.status, 200);
    assert_eq!(h.stored(), 2);
    let copy_path = format!("/api/v1/photos/{}", id_of(&copy));
    let last = h
        .send(Some(&bob), Method::DELETE, &copy_path, &[], None)
        .await;
    assert_eq!(last.status, 204);
    assert_eq!(h.stored(), 0, "the bytes go with their last photo");
}

#[actix_web::test]
async fn concurrent_uploads_and_deletes_of_the_same_bytes_never_lose_them() {
    uploads_racing_deletes_in(start().await).await;
}

#[actix_web::test]
async fn concurrent_uploads_and_deletes_of_the_same_bytes_never_lose_them_in_s3() {
    uploads_racing_deletes_in(start_s3().await).await;
}

async fn uploads_racing_deletes_in(h: Harness) {
    let alice = h.user();
    let file = jpeg(64, 64, 9);
    for _ in 0..6 {
        let first = h.uploaded(&alice, &file, "private", "").await;
        let path = format!("/api/v1/photos/{}", id_of(&first));
        let (deleted, second) = tokio::join!(
            h.send(Some(&alice), Method::DELETE, &path, &[], None),
            h.upload(&alice, &file, "private", ""),
        );
        assert_eq!(deleted.status, 204);
        assert_eq!(second.status, 201, "{}", second.body);
        let served = h
            .get(Some(&alice), second.body["url"].as_str().unwrap())
            .await;
        assert_eq!(served.status, 200, "the surviving photo's bytes are there");
        let path = format!("/api/v1/photos/{}", id_of(&second.body));
        let deleted = h.send(Some(&alice), Method::DELETE, &path, &[], None).await;
        assert_eq!(deleted.status, 204);
        assert_eq!(h.stored(), 0);
    }
}

#[actix_web::test]
async fn private_photos_and_share_links() {
    let h = start().await;
    let (alice, bob) = (h.user(), h.user());
    let photo = h
        .uploaded(&alice, &jpeg(100, 100, 2), "private", "secret")
        .await;
    let id: Uuid = id_of(&photo).parse().unwrap();
    let path = format!("/api/v1/photos/{id}");
    let url = format!("{path}/content");
    let links = format!("{path}/share-links");

    // Nobody but the owner learns it exists.
    problem(&h.get(Some(&bob), &path).await, 404);
    problem(&h.get(None, &url).await, 404);
    problem(&h.get(Some(&bob), &url).await, 404);
    problem(
        &h.json(&bob, Method::PATCH, &path, json!({"caption": "mine"}))
            .await,
        404,
    );
    problem(
        &h.json(
            &bob,
            Method::POST,
            &links,
            json!({"expires_in_seconds": 60}),
        )
        .await,
        404,
    );
    let own = h.get(Some(&alice), &url).await;
    assert_eq!(own.status, 200);
    assert_eq!(own.headers["cache-control"], "private, no-store");

    // A share link serves it without a token.
    for bad in [59, 604_801] {
        problem(
            &h.json(
                &alice,
                Method::POST,
                &links,
                json!({"expires_in_seconds": bad}),
            )
            .await,
            400,
        );
    }
    let link = h
        .json(
            &alice,
            Method::POST,
            &links,
            json!({"expires_in_seconds": 3600}),
        )
        .await;
    assert_eq!(link.status, 201, "{}", link.body);
    let shared = link.body["url"].as_str().unwrap().to_owned();
    assert!(shared.starts_with(&url));
    let served = h.get(None, &shared).await;
    assert_eq!(served.status, 200);
    assert_eq!(served.bytes, own.bytes);
    // Tampered, or moved to another expiry or photo: as if there were no link.
    let flipped = if shared.ends_with("AA") { "BB" } else { "AA" };
    let tampered = format!("{}{flipped}", &shared[..shared.len() - 2]);
    problem(&h.get(None, &tampered).await, 404);
    problem(
        &h.get(None, &shared.replace("expires=", "expires=9")).await,
        404,
    );
    let other = h.uploaded(&alice, &jpeg(100, 100, 3), "private", "").await;
    let query = &shared[shared.find('?').unwrap()..];
    let other_url = format!("{}{query}", other["url"].as_str().unwrap());
    problem(&h.get(None, &other_url).await, 404);
    // Authentic but expired: 403.
    let past = chrono::Utc::now().timestamp() - 10;
    let sig = LinkSigner::new(LINK_KEY).unwrap().sign(id, past);
    problem(
        &h.get(None, &format!("{url}?expires={past}&sig={sig}"))
            .await,
        403,
    );

    // Made public, others see it but still cannot change it.
    let patched = h
        .json(
            &alice,
            Method::PATCH,
            &path,
            json!({"visibility": "public", "caption": null}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["caption"], Value::Null);
    assert_eq!(patched.body["visibility"], "public");
    assert_eq!(h.get(Some(&bob), &path).await.status, 200);
    problem(
        &h.json(&bob, Method::PATCH, &path, json!({"caption": "mine"}))
            .await,
        403,
    );
    for bad in [
        json!({"tags": ["Bad"]}),
        json!({"tags": (0..11).map(|i| format!("t{i}")).collect::<Vec<_>>()}),
        json!({"caption": "x".repeat(501)}),
        json!({"visibility": "friends"}),
        json!({"owner_id": bob.id}),
    ] {
        problem(&h.json(&alice, Method::PATCH, &path, bad).await, 400);
    }
}

#[actix_web::test]
async fn bad_uploads_are_refused_and_nothing_is_stored() {
    let h = start().await;
    let alice = h.user();
    let post = |parts: Vec<(&'static str, Option<&'static str>, Vec<u8>)>| {
        let (h, alice) = (&h, &alice);
        async move {
            let borrowed: Vec<(&str, Option<&str>, &[u8])> = parts
                .iter()
                .map(|(n, f, b)| (*n, *f, b.as_slice()))
                .collect();
            let (ct, body) = form(&borrowed);
            h.send(
                Some(alice),
                Method::POST,
                "/api/v1/photos",
                &[],
                Some((ct, body)),
            )
            .await
        }
    };
    // Not an image, whatever its name says.
    let pdf = b"%PDF-1.7 not an image".to_vec();
    problem(&post(vec![("file", Some("cat.jpg"), pdf)]).await, 415);
    // Over the limit.
    let big = vec![0xFF; MAX_UPLOAD + 1];
    problem(&post(vec![("file", Some("big.jpg"), big)]).await, 413);
    // A pixel bomb: 4 KiB whose valid PNG header claims 60000×60000 pixels (10 GB).
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(60000u32.to_be_bytes());
    ihdr.extend(60000u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0d".to_vec();
    png.extend(&ihdr);
    png.extend(crc32(&ihdr).to_be_bytes());
    png.extend(vec![0u8; 4096]);
    problem(&post(vec![("file", Some("bomb.png"), png)]).await, 413);
    // A truncated JPEG: an image type, but broken.
    let broken = jpeg(50, 50, 4)[..200].to_vec();
    problem(&post(vec![("file", Some("b.jpg"), broken)]).await, 400);
    // Fields: missing file, unknown field, bad tags, visibility or caption.
    let ok = jpeg(20, 20, 5);
    problem(
        &post(vec![("visibility", None, b"public".to_vec())]).await,
        400,
    );
    for (name, value) in [
        ("owner", b"x".to_vec()),
        ("tags", b"Nope".to_vec()),
        ("visibility", b"friends".to_vec()),
        ("caption", vec![b'x'; 501]),
    ] {
        let r = post(vec![("file", Some("a"), ok.clone()), (name, None, value)]).await;
        problem(&r, 400);
    }
    // A field given twice: refused, naming it (the last value does not win).
    for name in ["caption", "visibility", "tags"] {
        let mut parts = vec![("file", Some("a"), ok.clone())];
        for _ in 0..6 {
            parts.push((name, None, b"public".to_vec()));
        }
        let r = post(parts).await;
        problem(&r, 400);
        assert_eq!(r.body["errors"][0]["field"], name, "{}", r.body);
        assert_eq!(r.body["errors"][0]["message"], "may be given only once");
    }
    let two_files = post(vec![
        ("file", Some("a"), ok.clone()),
        ("file", Some("b"), ok.clone()),
    ])
    .await;
    problem(&two_files, 400);
    assert_eq!(two_files.body["errors"][0]["field"], "file");
    // Not multipart at all; no token.
    let json_body = Some(("application/json".to_owned(), b"{}".to_vec()));
    let r = h
        .send(Some(&alice), Method::POST, "/api/v1/photos", &[], json_body)
        .await;
    problem(&r, 415);
    problem(
        &h.send(None, Method::POST, "/api/v1/photos", &[], None)
            .await,
        401,
    );
    assert_eq!(h.stored(), 0);
    let mine = h.get(Some(&alice), "/api/v1/photos?owner=me").await;
    assert_eq!(mine.body["items"], json!([]));
}

#[actix_web::test]
async fn gps_metadata_does_not_survive_an_upload() {
    let h = start().await;
    let alice = h.user();
    let plain = jpeg(60, 30, 6);
    // An EXIF segment (little-endian TIFF): orientation 6, and a GPS IFD at offset 38
    // holding a latitude reference.
    let mut tiff: Vec<u8> = b"II*\0\x08\0\0\0".to_vec();
    tiff.extend([2, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]);
    tiff.extend([0x25, 0x88, 4, 0, 1, 0, 0, 0, 38, 0, 0, 0, 0, 0, 0, 0]);
    tiff.extend([1, 0, 1, 0, 2, 0, 2, 0, 0, 0, b'N', 0, 0, 0, 0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let mut tagged = plain[..2].to_vec();
    tagged.extend([0xFF, 0xE1]);
    tagged.extend(((app1.len() + 2) as u16).to_be_bytes());
    tagged.extend(app1);
    tagged.extend(&plain[2..]);
    let photo = h.uploaded(&alice, &tagged, "public", "").await;
    assert_eq!(
        (photo["width"].as_i64(), photo["height"].as_i64()),
        (Some(30), Some(60))
    );
    let content = h.get(None, photo["url"].as_str().unwrap()).await;
    assert!(!content.bytes.windows(4).any(|w| w == b"Exif"));
    assert!(!content.bytes.windows(4).any(|w| w == b"II*\0"));
}

#[actix_web::test]
async fn tag_search_is_and_newest_first_and_paginated() {
    let h = start().await;
    let (alice, bob) = (h.user(), h.user());
    let both1 = h
        .uploaded(&alice, &jpeg(10, 10, 10), "public", "cat,beach")
        .await;
    h.uploaded(&bob, &jpeg(10, 10, 11), "public", "cat").await;
    h.uploaded(&bob, &jpeg(10, 10, 12), "private", "cat,beach")
        .await;
    let both2 = h
        .uploaded(&bob, &jpeg(10, 10, 13), "public", "beach,cat,sun")
        .await;
    h.uploaded(&alice, &jpeg(10, 10, 14), "public", "beach")
        .await;

    let ids = |r: &Reply| -> Vec<String> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(id_of)
            .collect()
    };
    let search = "/api/v1/photos?tag=cat&tag=beach";
    let found = h.get(Some(&alice), search).await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(ids(&found), [id_of(&both2), id_of(&both1)]);
    // Pages are disjoint and end.
    let first = h.get(Some(&alice), &format!("{search}&limit=1")).await;
    assert_eq!(ids(&first), [id_of(&both2)]);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = h
        .get(Some(&alice), &format!("{search}&limit=1&cursor={cursor}"))
        .await;
    assert_eq!(ids(&second), [id_of(&both1)]);
    assert_eq!(second.body["next_cursor"], Value::Null);
    // An unknown tag: nothing. Bad tags, owners and cursors: 400.
    let none = h
        .get(Some(&alice), "/api/v1/photos?tag=cat&tag=nosuch")
        .await;
    assert_eq!(ids(&none), Vec::<String>::new());
    // A repeated single-valued parameter or an unknown one is refused too (`tag` alone
    // may repeat).
    for bad in [
        "tag=BAD",
        "cursor=nope",
        "owner=bob",
        "limit=0",
        "limit=1&limit=2",
        "owner=me&owner=me",
        "tags=cat",
    ] {
        problem(
            &h.get(Some(&alice), &format!("/api/v1/photos?{bad}")).await,
            400,
        );
    }
    // All public photos; the owner's own, private ones included.
    assert_eq!(ids(&h.get(Some(&alice), "/api/v1/photos").await).len(), 4);
    assert_eq!(
        ids(&h.get(Some(&bob), "/api/v1/photos?owner=me").await).len(),
        3
    );
    let bobs_beach = h.get(Some(&bob), "/api/v1/photos?owner=me&tag=beach").await;
    assert_eq!(ids(&bobs_beach).len(), 2);

    // Tag suggestions count public photos only.
    let tags = h.get(Some(&alice), "/api/v1/photos/tags?prefix=").await;
    assert_eq!(
        tags.body["items"],
        json!([{"tag": "beach", "count": 3}, {"tag": "cat", "count": 3}, {"tag": "sun", "count": 1}])
    );
    let c = h.get(Some(&alice), "/api/v1/photos/tags?prefix=c").await;
    assert_eq!(c.body["items"], json!([{"tag": "cat", "count": 3}]));
    problem(
        &h.get(Some(&alice), "/api/v1/photos/tags?prefix=%25").await,
        400,
    );
    // Made private or retagged, a photo leaves the counts and the search.
    let path2 = format!("/api/v1/photos/{}", id_of(&both2));
    let r = h
        .json(
            &bob,
            Method::PATCH,
            &path2,
            json!({"visibility": "private"}),
        )
        .await;
    assert_eq!(r.status, 200);
    let path1 = format!("/api/v1/photos/{}", id_of(&both1));
    let r = h
        .json(&alice, Method::PATCH, &path1, json!({"tags": ["dog"]}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        ids(&h.get(Some(&alice), search).await),
        Vec::<String>::new()
    );
    let tags = h.get(Some(&alice), "/api/v1/photos/tags").await;
    assert_eq!(
        tags.body["items"],
        json!([{"tag": "beach", "count": 1}, {"tag": "cat", "count": 1}, {"tag": "dog", "count": 1}])
    );
}

#[actix_web::test]
async fn other_services_ask_which_photos_a_user_may_use() {
    let h = start().await;
    let (alice, bob) = (h.user(), h.user());
    let own = h.uploaded(&alice, &jpeg(10, 10, 20), "private", "").await;
    let public = h.uploaded(&bob, &jpeg(10, 10, 21), "public", "").await;
    let private = h.uploaded(&bob, &jpeg(10, 10, 22), "private", "").await;
    let body =
        json!({"owner": alice.id, "ids": [own["id"], public["id"], private["id"], Uuid::now_v7()]});
    let ask = |token: &'static str| {
        h.http
            .post(format!("{}/internal/photos/usable", h.api))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let answer: Value = ask(INTERNAL).await.unwrap().json().await.unwrap();
    let mut usable: Vec<String> = serde_json::from_value(answer["usable"].clone()).unwrap();
    usable.sort();
    let mut expected = vec![id_of(&own), id_of(&public)];
    expected.sort();
    assert_eq!(usable, expected);
    // Which of them are public: the others only their owner can see, so they may not
    // be shown where others look (a public post, an avatar).
    assert_eq!(answer["public"], json!([public["id"]]));
    let as_user = h
        .http
        .post(format!("{}/internal/photos/usable", h.api))
        .bearer_auth(&alice.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(as_user.status(), 401, "users are not services");
}

#[actix_web::test]
async fn a_photo_made_private_is_not_served_to_a_revalidating_cache() {
    let h = start().await;
    let alice = h.user();
    let photo = h.uploaded(&alice, &jpeg(40, 20, 30), "public", "").await;
    let url = format!("/api/v1/photos/{}/content", id_of(&photo));
    let first = h.get(None, &url).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.headers["cache-control"], "public, no-cache");
    let etag = first.headers["etag"].to_str().unwrap().to_owned();
    let r = h
        .json(
            &alice,
            Method::PATCH,
            &format!("/api/v1/photos/{}", id_of(&photo)),
            json!({"visibility": "private"}),
        )
        .await;
    assert_eq!(r.status, 200);
    // A shared cache revalidating its copy (no token) learns that it is gone.
    let revalidated = h
        .send(None, Method::GET, &url, &[("if-none-match", &etag)], None)
        .await;
    assert_eq!(revalidated.status, 404);
    // The owner still gets it, never stored by shared caches.
    let own = h.get(Some(&alice), &url).await;
    assert_eq!(own.status, 200);
    assert_eq!(own.headers["cache-control"], "private, no-store");
}
