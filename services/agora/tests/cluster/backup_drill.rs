//! The restore drill on the real node, on a platform of its own: people write posts,
//! comments, follows and photos while a backup is taken to the S3 server; a backup Job
//! killed halfway ends `Failed`, and a backup whose pod is killed halfway is retried
//! from the start and completes; someone is erased after the backup; the platform is
//! deleted with its volumes and made again, restored from the backup.
//!
//! "Halfway" is made certain, not timed: a transaction holds the events table locked, so
//! the backup's `pg_dump` of that database (the fourth in the cut) waits until the test
//! has killed what it kills.

use super::*;
use std::collections::HashMap;

/// The drill's platform; also its backups' prefix and its Secrets' prefix.
const DRILL: &str = "drill";

/// A write the drill's people had acknowledged, and when.
struct Acked {
    at: Instant,
    kind: &'static str,
    /// Posts and photos: the id; comments: `post/comment`; follows: the follower's id.
    id: String,
}

/// What the writers saw while the backup ran.
#[derive(Default)]
struct Writes {
    acked: Vec<Acked>,
    requests: usize,
    failures: Vec<String>,
}

impl Writes {
    /// The writes of `kind` acknowledged before `instant`.
    fn before(&self, kind: &str, instant: Instant) -> Vec<&str> {
        self.acked
            .iter()
            .filter(|a| a.kind == kind && a.at < instant)
            .map(|a| a.id.as_str())
            .collect()
    }

    fn record(
        &mut self,
        kind: &'static str,
        what: &str,
        reply: Result<Reply, String>,
    ) -> Option<Value> {
        self.requests += 1;
        match reply {
            Ok(r) if (200..300).contains(&r.status) => Some(r.body),
            Ok(r) => {
                self.failures.push(format!("{what}: {}", r.describe()));
                None
            }
            Err(e) => {
                self.failures.push(format!("{kind} {e}"));
                None
            }
        }
    }

    fn ack(&mut self, kind: &'static str, id: String) {
        self.acked.push(Acked {
            at: Instant::now(),
            kind,
            id,
        });
    }
}

/// Five times a second until `stop`: `author` posts (every third post with a photo just
/// uploaded), a fan comments on it, and every third round one more fan follows.
async fn write_steadily(
    edge: &Edge,
    author: &Person,
    fans: &[Person],
    stop: &std::cell::Cell<bool>,
) -> Writes {
    let mut out = Writes::default();
    let json = |v: Value| Some(("application/json", v.to_string().into_bytes()));
    let mut round = 0usize;
    while !stop.get() {
        let started = Instant::now();
        round += 1;
        let mut post = json!({"text": format!("drill {round}")});
        if round.is_multiple_of(3) {
            let image = png(100 + (round % 150) as u8);
            let (content_type, body) = multipart(&image, &[("visibility", "public")]);
            let reply = edge
                .try_send(
                    "POST",
                    "/api/v1/photos",
                    Some(&author.token),
                    &[],
                    Some((&content_type, body)),
                )
                .await;
            if let Some(photo) = out.record("photo", "POST /photos", reply) {
                let id = photo["id"].as_str().unwrap().to_owned();
                post["photo_ids"] = json!([id]);
                out.ack("photo", id);
            }
            if let Some(fan) = fans.get(round / 3 - 1) {
                let path = format!("/api/v1/relations/following/{}", author.id);
                let reply = edge
                    .try_send("PUT", &path, Some(&fan.token), &[], None)
                    .await;
                if out
                    .record("follow", &format!("PUT {path}"), reply)
                    .is_some()
                {
                    out.ack("follow", fan.id.clone());
                }
            }
        }
        let reply = edge
            .try_send(
                "POST",
                "/api/v1/posts",
                Some(&author.token),
                &[],
                json(post),
            )
            .await;
        if let Some(post) = out.record("post", "POST /posts", reply) {
            let id = post["id"].as_str().unwrap().to_owned();
            out.ack("post", id.clone());
            let fan = &fans[round % fans.len()];
            let path = format!("/api/v1/posts/{id}/comments");
            let reply = edge
                .try_send(
                    "POST",
                    &path,
                    Some(&fan.token),
                    &[],
                    json(json!({"text": "seen"})),
                )
                .await;
            if let Some(comment) = out.record("comment", &format!("POST {path}"), reply) {
                out.ack(
                    "comment",
                    format!("{id}/{}", comment["id"].as_str().unwrap()),
                );
            }
        }
        if let Some(left) = Duration::from_millis(200).checked_sub(started.elapsed()) {
            actix_web::rt::time::sleep(left).await;
        }
    }
    out
}

/// `psql` as the superuser in the drill's database server, on `database`; rows as text.
async fn psql(database: &str, sql: &str) -> String {
    let pod = format!("{DRILL}-postgres-0");
    kubectl(&[
        "exec", &pod, "--", "psql", "-U", "postgres", "-d", database, "-tAc", sql,
    ])
    .await
    .trim()
    .to_owned()
}

/// A transaction that holds the drill's events table (ACCESS EXCLUSIVE) until released.
struct EventsLocked(std::process::Child);

const LOCK_HOLDERS: &str = "from pg_locks l join pg_class c on c.oid = l.relation \
    where c.relname = 'events' and l.mode = 'AccessExclusiveLock' and l.granted";

impl EventsLocked {
    async fn take() -> Self {
        let pod = format!("{DRILL}-postgres-0");
        let child = std::process::Command::new("kubectl")
            .args(["-n", &env("AGORA_E2E_NAMESPACE"), "exec", &pod, "--"])
            .args(["psql", "-U", "postgres", "-d", "events", "-c"])
            .arg("BEGIN; LOCK TABLE events IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(600)")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_ready(
            "the events table locked",
            Duration::from_secs(30),
            async || psql("events", &format!("select count(*) {LOCK_HOLDERS}")).await == "1",
        )
        .await;
        EventsLocked(child)
    }

    async fn release(mut self) {
        psql(
            "events",
            &format!("select pg_terminate_backend(l.pid) {LOCK_HOLDERS}"),
        )
        .await;
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Until a backup's `pg_dump` waits for the locked events table (and its phase says so).
async fn halfway(backup: &str) {
    wait_ready(
        "the backup to wait halfway",
        Duration::from_secs(180),
        async || {
            let waiting = psql(
                "events",
                "select count(*) from pg_stat_activity where datname = 'events' \
             and application_name = 'pg_dump' and wait_event_type = 'Lock'",
            )
            .await;
            waiting == "1" && backup_phase(backup).await == "Running"
        },
    )
    .await;
}

/// Deletes the platform `name`, then its volumes, and waits until nothing of it is left.
async fn delete_with_its_volumes(name: &str) {
    kubectl(&[
        "delete",
        "socialplatform",
        name,
        "--wait=true",
        "--timeout=180s",
    ])
    .await;
    let mine = format!("app.kubernetes.io/instance={name}");
    kubectl(&[
        "delete",
        "pvc",
        "-l",
        &mine,
        "--wait=true",
        "--timeout=180s",
    ])
    .await;
    wait_ready(
        &format!("every object of {name} gone"),
        Duration::from_secs(180),
        async || {
            kubectl(&["get", "all,pvc,secret,configmap", "-l", &mine, "-o", "name"])
                .await
                .trim()
                .is_empty()
        },
    )
    .await;
}

/// The SHA-256 of each photo's served bytes.
async fn photo_digests(edge: &Edge, token: &str, ids: &[&str]) -> HashMap<String, String> {
    let mut digests = HashMap::new();
    for id in ids {
        let reply = edge
            .send(
                "GET",
                &format!("/api/v1/photos/{id}/content"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(reply.status, 200, "photo {id}: {}", reply.describe());
        digests.insert((*id).to_owned(), sha256(&reply.raw));
    }
    digests
}

async fn sign_in(edge: &Edge, username: &str) -> Reply {
    edge.send(
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({"login": username, "password": "correct horse battery"})),
    )
    .await
}

#[actix_web::test]
async fn the_backup_drill_restores_a_platform_taken_under_load() {
    let edge = another_platform(DRILL, |_| {}).await;
    let gus = register(&edge, "gus").await;
    let mut fans = Vec::new();
    for _ in 0..12 {
        fans.push(register(&edge, "fan").await);
    }
    let ivy = register(&edge, "ivy").await;
    back_up_to_the_bucket(DRILL, DRILL, 37, DRILL, None).await;
    // The auth service learns where erasures are logged: wait for its new pods.
    let auth = format!("deployment/{DRILL}-auth");
    wait_ready("auth to log erasures", Duration::from_secs(60), async || {
        let path = r#"jsonpath={.spec.template.spec.containers[0].env[?(@.name=="AUTH_ERASURE_LOG")].value}"#;
        !kubectl(&["get", &auth, "-o", path]).await.trim().is_empty()
    })
    .await;
    kubectl(&["rollout", "status", &auth, "--timeout=180s"]).await;

    // A backup whose Job is deleted halfway ends Failed (never Completed).
    let locked = EventsLocked::take().await;
    request_backup(DRILL, "drill-cut").await;
    halfway("drill-cut").await;
    kubectl(&[
        "delete",
        "job",
        "drill-cut-backup",
        "--cascade=foreground",
        "--wait=true",
    ])
    .await;
    kubectl(&[
        "wait",
        "--for=delete",
        "pod",
        "-l",
        "job-name=drill-cut-backup",
        "--timeout=120s",
    ])
    .await;
    locked.release().await;
    wait_phase("drill-cut", "Failed").await;

    // The next backup, taken while the people write; its pod killed halfway: the Job's
    // next pod starts over and completes.
    let stop = std::cell::Cell::new(false);
    let backup_requested = std::cell::Cell::new(None);
    let backing_up = async {
        let locked = EventsLocked::take().await;
        backup_requested.set(Some(Instant::now()));
        request_backup(DRILL, DRILL).await;
        halfway(DRILL).await;
        let pods = || kubectl(&["get", "pods", "-l", "job-name=drill-backup", "-o", "name"]);
        let killed = pods().await.trim().to_owned();
        kubectl(&["delete", &killed, "--grace-period=1", "--wait=true"]).await;
        // The Job's next pod (a retry over what the killed one left) waits in turn.
        wait_ready("the Job's next pod", Duration::from_secs(60), async || {
            let now = pods().await;
            !now.trim().is_empty() && !now.contains(&killed)
        })
        .await;
        locked.release().await;
        wait_phase(DRILL, "Completed").await;
    };
    let (writes, ()) = futures_util::join!(
        write_steadily(&edge, &gus, &fans, &stop),
        stop_after(&stop, Duration::from_secs(2), backing_up)
    );
    assert!(writes.failures.is_empty(), "{:#?}", writes.failures);
    let cut = backup_requested.get().unwrap();
    let size = kubectl(&[
        "get",
        "socialplatformbackup",
        DRILL,
        "-o",
        "jsonpath={.status.sizeBytes}",
    ])
    .await;
    assert!(size.parse::<u64>().unwrap_or(0) > 0, "size {size:?}");
    let photos = writes.before("photo", cut);
    let posts = writes.before("post", cut);
    assert!(
        photos.len() >= 2 && posts.len() >= 10,
        "the stream wrote {} photos and {} posts before the backup",
        photos.len(),
        posts.len()
    );
    let digests = photo_digests(&edge, &gus.token, &photos).await;

    // After the backup, ivy leaves: her erasure is logged beside the backups.
    let deletion = leave(&edge, &ivy).await;
    erased(&edge, &deletion).await;

    // The platform is lost with its volumes, and made again from the backup.
    delete_with_its_volumes(DRILL).await;
    let again = another_platform(DRILL, |spec| {
        spec["restore"] = json!({"backup": DRILL});
    })
    .await;
    // A token of the lost platform verifies: the signing key came back.
    let me = again
        .ok("GET", "/api/v1/auth/me", Some(&gus.token), None)
        .await;
    assert_eq!(me["id"], gus.id.as_str());
    let login = sign_in(&again, &gus.username).await;
    assert_eq!(login.status, 200, "{}", login.describe());
    let token = login.body["access_token"].as_str().unwrap().to_owned();
    // Ivy was erased after the backup: the log of it was applied again.
    assert_eq!(sign_in(&again, &ivy.username).await.status, 401);
    // Every write acknowledged before the backup was asked for is there.
    for id in &posts {
        let post = again
            .ok("GET", &format!("/api/v1/posts/{id}"), Some(&token), None)
            .await;
        for photo in post["photos"].as_array().into_iter().flatten() {
            let photo = photo["id"].as_str().unwrap();
            let bytes = photo_digests(&again, &token, &[photo]).await;
            assert!(
                digests
                    .get(photo)
                    .is_none_or(|d| Some(d) == bytes.get(photo)),
                "post {id}'s photo {photo} differs"
            );
        }
    }
    assert_eq!(photo_digests(&again, &token, &photos).await, digests);
    for pair in writes.before("comment", cut) {
        let (post, comment) = pair.split_once('/').unwrap();
        let list = again
            .ok(
                "GET",
                &format!("/api/v1/posts/{post}/comments?limit=100"),
                Some(&token),
                None,
            )
            .await;
        assert!(
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["id"] == comment),
            "comment {comment} on {post} is missing: {list}"
        );
    }
    let followers = again
        .ok(
            "GET",
            &format!("/api/v1/relations/users/{}/followers?limit=100", gus.id),
            Some(&token),
            None,
        )
        .await;
    for fan in writes.before("follow", cut) {
        assert!(
            followers["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["id"] == fan),
            "the follow of {fan} is missing: {followers}"
        );
    }
    // Nothing half-present: every post the restored feed shows has its photos.
    let feed = again
        .ok("GET", "/api/v1/feed?limit=100", Some(&token), None)
        .await;
    for item in feed["items"].as_array().unwrap() {
        for photo in item["photos"].as_array().into_iter().flatten() {
            let path = format!("/api/v1/photos/{}/content", photo["id"].as_str().unwrap());
            assert_eq!(
                again.send("GET", &path, Some(&token), None).await.status,
                200,
                "{item}"
            );
        }
    }

    // The drill's platform and backups go (Jobs delete the backups' files).
    delete_with_its_volumes(DRILL).await;
    for backup in [DRILL, "drill-cut"] {
        kubectl(&[
            "delete",
            "socialplatformbackup",
            backup,
            "--wait=true",
            "--timeout=180s",
        ])
        .await;
    }
    kubectl(&["delete", "secret", "drill-s3", "drill-key"]).await;
}
