//! `agora seed`: fills a running platform with realistic demo data through its public
//! API only (so it works on `agora up` and through an ingress alike): people with
//! profiles and photo avatars, a skewed follow graph and friendships, posts of every
//! visibility with links and photos (some reused from other people's public photos
//! found by tag), comments, reactions, events and RSVPs. The same `--seed` plans the
//! same data (see [`plan`]); what depends on the run is ids and timestamps.

pub mod api;
pub mod plan;

use api::{Api, Body, SeedError};
use futures_util::{StreamExt, TryStreamExt};
use plan::{Plan, PostPhoto, Sizes};
use reqwest::Method;
use serde_json::{Value, json};
use std::future::Future;
use std::sync::Mutex;
use std::time::Instant;

/// What to seed, and where.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    /// The platform's base URL (the gateway or the ingress), e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// How many people.
    pub users: usize,
    /// Average posts per person.
    pub posts_per_user: usize,
    /// Picks the data: the same seed plans the same people, posts and relations.
    pub seed: u32,
    /// Every demo account's password.
    pub password: String,
    /// Requests in flight at once.
    pub concurrency: usize,
}

/// What was created.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub users: usize,
    pub follows: usize,
    pub friendships: usize,
    pub photos: usize,
    pub posts: usize,
    pub comments: usize,
    pub reactions: usize,
    pub events: usize,
    pub rsvps: usize,
    /// A few accounts to sign in with: `(username, user id)`; the first is the most
    /// followed person.
    pub demo_accounts: Vec<(String, String)>,
}

/// A signed-up person: id and current access token (renewed when it expires).
struct Account {
    id: String,
    login: String,
    token: Mutex<String>,
}

struct Seeder<'a> {
    api: Api,
    options: &'a SeedOptions,
    accounts: Vec<Account>,
    progress: &'a (dyn Fn(&str) + Sync),
}

fn text(value: &Value, field: &str) -> String {
    value[field].as_str().unwrap_or_default().to_owned()
}

impl Seeder<'_> {
    fn token(&self, who: usize) -> String {
        self.accounts[who]
            .token
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    /// A call as `who`, signing in again once if the access token has expired.
    async fn call(
        &self,
        who: usize,
        method: Method,
        path: &str,
        body: Body,
    ) -> Result<Value, SeedError> {
        let token = self.token(who);
        match self
            .api
            .call(method.clone(), path, Some(&token), &body)
            .await
        {
            Err(err) if err.status() == Some(401) => {
                let session = self
                    .api
                    .call(
                        Method::POST,
                        "/api/v1/auth/login",
                        None,
                        &Body::Json(json!({
                            "login": self.accounts[who].login,
                            "password": self.options.password,
                        })),
                    )
                    .await?;
                let fresh = text(&session, "access_token");
                if let Ok(mut token) = self.accounts[who].token.lock() {
                    token.clone_from(&fresh);
                }
                self.api.call(method, path, Some(&fresh), &body).await
            }
            other => other,
        }
    }

    /// Runs one step per item, `concurrency` at a time, reporting progress; the results
    /// come back in item order.
    async fn phase<T, F, Fut>(
        &self,
        name: &str,
        items: Vec<T>,
        step: F,
    ) -> Result<Vec<Value>, SeedError>
    where
        F: Fn(T) -> Fut,
        Fut: Future<Output = Result<Value, SeedError>>,
    {
        let total = items.len();
        let started = Instant::now();
        (self.progress)(&format!("{name}: 0/{total}"));
        let done = std::sync::atomic::AtomicUsize::new(0);
        let step = &step;
        let done_ref = &done;
        let results = futures_util::stream::iter(items)
            .map(|item| async move {
                let result = step(item).await;
                let n = done_ref.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if total >= 100 && n.is_multiple_of(total / 10) && n < total {
                    (self.progress)(&format!("{name}: {n}/{total}"));
                }
                result
            })
            .buffered(self.options.concurrency.max(1))
            .try_collect::<Vec<Value>>()
            .await?;
        (self.progress)(&format!(
            "{name}: {total}/{total} in {:.1}s",
            started.elapsed().as_secs_f64()
        ));
        Ok(results)
    }
}

/// Seeds the platform at `options.url` and says what it created. `progress` gets one
/// line at a time.
pub async fn run(
    options: &SeedOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Summary, SeedError> {
    let plan = Plan::new(
        options.seed,
        Sizes {
            users: options.users,
            posts_per_user: options.posts_per_user,
        },
    );
    let api = Api::new(&options.url).map_err(|source| SeedError::Transport {
        method: "GET".into(),
        path: options.url.clone(),
        source,
    })?;

    // People.
    let registrations = {
        let seeder = Seeder {
            api: api.clone(),
            options,
            accounts: Vec::new(),
            progress,
        };
        seeder
            .phase("people", plan.people.iter().collect(), |person| {
                let api = &seeder.api;
                async move {
                    let body = json!({
                        "username": person.username,
                        "email": format!("{}@seed.agora.test", person.username),
                        "password": options.password,
                    });
                    match api
                        .call(
                            Method::POST,
                            "/api/v1/auth/register",
                            None,
                            &Body::Json(body),
                        )
                        .await
                    {
                        Err(err) if err.status() == Some(409) => {
                            Err(SeedError::AlreadySeeded(person.username.clone()))
                        }
                        other => other,
                    }
                }
            })
            .await?
    };
    let accounts = registrations
        .iter()
        .zip(&plan.people)
        .map(|(session, person)| Account {
            id: text(&session["user"], "id"),
            login: person.username.clone(),
            token: Mutex::new(text(session, "access_token")),
        })
        .collect();
    let s = Seeder {
        api,
        options,
        accounts,
        progress,
    };
    let mut summary = Summary {
        users: plan.people.len(),
        ..Summary::default()
    };

    // Photos, then profiles with a photo avatar.
    let uploads = s
        .phase("photos", plan.photos.iter().collect(), |photo| {
            let s = &s;
            async move {
                // Off the runtime's threads: a runtime busy drawing cannot read its
                // connections.
                let pixels_seed = photo.pixels_seed;
                let bytes = tokio::task::spawn_blocking(move || draw(pixels_seed)).await??;
                let fields = vec![
                    (
                        "visibility",
                        if photo.public { "public" } else { "private" }.to_owned(),
                    ),
                    ("tags", photo.tags.join(",")),
                    ("caption", photo.caption.clone()),
                ];
                s.call(
                    photo.owner,
                    Method::POST,
                    "/api/v1/photos",
                    Body::Photo { bytes, fields },
                )
                .await
            }
        })
        .await?;
    summary.photos = uploads.len();
    let photo_ids: Vec<String> = uploads.iter().map(|p| text(p, "id")).collect();
    let profiles: Vec<usize> = (0..plan.people.len()).collect();
    s.phase("profiles", profiles, |who| {
        let (s, person) = (&s, &plan.people[who]);
        let avatar = plan.avatars[who].map(|p| text(&uploads[p], "url"));
        async move {
            let body = json!({
                "display_name": person.display_name, "bio": person.bio,
                "location": person.location, "website": person.website, "avatar_url": avatar,
            });
            s.call(who, Method::PATCH, "/api/v1/users/me", Body::Json(body))
                .await
        }
    })
    .await?;

    // Follows and friendships.
    s.phase("follows", plan.follows.clone(), |(a, b)| {
        let s = &s;
        async move {
            let path = format!("/api/v1/relations/following/{}", s.accounts[b].id);
            s.call(a, Method::PUT, &path, Body::None).await
        }
    })
    .await?;
    summary.follows = plan.follows.len();
    s.phase("friendships", plan.friendships.clone(), |(a, b)| {
        let s = &s;
        async move {
            let body = json!({"to": s.accounts[b].id});
            let request = s
                .call(
                    a,
                    Method::POST,
                    "/api/v1/relations/friend-requests",
                    Body::Json(body),
                )
                .await?;
            if request["status"] == "accepted" {
                return Ok(request);
            }
            let path = format!(
                "/api/v1/relations/friend-requests/{}/accept",
                text(&request, "id")
            );
            s.call(b, Method::POST, &path, Body::None).await
        }
    })
    .await?;
    summary.friendships = plan.friendships.len();

    // Posts, then what others make of them.
    let posts = s
        .phase("posts", plan.posts.iter().collect(), |post| {
            let (s, photo_ids) = (&s, &photo_ids);
            async move {
                let photo = match post.photo {
                    Some(PostPhoto::Own(p)) => Some(photo_ids[p].clone()),
                    Some(PostPhoto::Found(tag)) => {
                        let path = format!("/api/v1/photos?tag={tag}&limit=1");
                        let found = s.call(post.author, Method::GET, &path, Body::None).await?;
                        found["items"][0]["id"].as_str().map(str::to_owned)
                    }
                    None => None,
                };
                let body = json!({
                    "text": post.text, "visibility": post.visibility,
                    "links": post.link.iter().collect::<Vec<_>>(),
                    "photo_ids": photo.iter().collect::<Vec<_>>(),
                });
                s.call(post.author, Method::POST, "/api/v1/posts", Body::Json(body))
                    .await
            }
        })
        .await?;
    summary.posts = posts.len();
    let post_ids: Vec<String> = posts.iter().map(|p| text(p, "id")).collect();
    let comments: Vec<(usize, usize, &str)> = plan
        .posts
        .iter()
        .enumerate()
        .flat_map(|(i, p)| p.comments.iter().map(move |&(who, text)| (i, who, text)))
        .collect();
    summary.comments = comments.len();
    s.phase("comments", comments, |(post, who, text)| {
        let s = &s;
        let path = format!("/api/v1/posts/{}/comments", post_ids[post]);
        async move {
            s.call(who, Method::POST, &path, Body::Json(json!({"text": text})))
                .await
        }
    })
    .await?;
    let reactions: Vec<(usize, usize, &str)> = plan
        .posts
        .iter()
        .enumerate()
        .flat_map(|(i, p)| p.reactions.iter().map(move |&(who, emoji)| (i, who, emoji)))
        .collect();
    summary.reactions = reactions.len();
    s.phase("reactions", reactions, |(post, who, emoji)| {
        let s = &s;
        let encoded: String = emoji.bytes().map(|b| format!("%{b:02X}")).collect();
        let path = format!("/api/v1/posts/{}/reactions/{encoded}", post_ids[post]);
        async move { s.call(who, Method::PUT, &path, Body::None).await }
    })
    .await?;

    // Events, then the answers of those invited (followers, or friends for
    // friends-only events).
    let now = chrono::Utc::now();
    let events = s
        .phase("events", plan.events.iter().collect(), |event| {
            let s = &s;
            async move {
                let starts = now + chrono::Duration::hours(event.starts_in_hours);
                let body = json!({
                    "title": event.title, "location": event.location,
                    "starts_at": starts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "ends_at": (starts + chrono::Duration::hours(3)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "visibility": if event.friends_only { "friends" } else { "public" },
                    "description": format!("Organized by {}.", s.accounts[event.organizer].login),
                });
                s.call(event.organizer, Method::POST, "/api/v1/events", Body::Json(body))
                    .await
            }
        })
        .await?;
    summary.events = events.len();
    let rsvps: Vec<(String, usize, &str)> = plan
        .events
        .iter()
        .zip(&events)
        .flat_map(|(e, created)| {
            let id = text(created, "id");
            e.rsvps
                .iter()
                .map(move |&(who, status)| (id.clone(), who, status))
        })
        .collect();
    summary.rsvps = rsvps.len();
    s.phase("rsvps", rsvps, |(event, who, status)| {
        let s = &s;
        async move {
            let path = format!("/api/v1/events/{event}/rsvp");
            s.call(
                who,
                Method::PUT,
                &path,
                Body::Json(json!({"status": status})),
            )
            .await
        }
    })
    .await?;

    // Demo accounts: the most followed person, then the first few.
    let mut followers = vec![0usize; plan.people.len()];
    for &(_, b) in &plan.follows {
        followers[b] += 1;
    }
    let star = (0..followers.len())
        .max_by_key(|&i| (followers[i], std::cmp::Reverse(i)))
        .unwrap_or(0);
    let mut demo = vec![star];
    demo.extend((0..plan.people.len()).filter(|&i| i != star).take(2));
    summary.demo_accounts = demo
        .into_iter()
        .map(|i| (s.accounts[i].login.clone(), s.accounts[i].id.clone()))
        .collect();
    Ok(summary)
}

/// A 480×360 JPEG: a diagonal gradient between two colours with a sun, from a seed.
fn draw(seed: u64) -> Result<Vec<u8>, SeedError> {
    let mut rng = plan::Rng::new(seed);
    let mut colour = || {
        [
            rng.below(256) as f32,
            rng.below(256) as f32,
            rng.below(256) as f32,
        ]
    };
    let (from, to, sun) = (colour(), colour(), colour());
    let (cx, cy, r) = (
        80.0 + rng.below(320) as f32,
        60.0 + rng.below(200) as f32,
        20.0 + rng.below(60) as f32,
    );
    let image = image::RgbImage::from_fn(480, 360, |x, y| {
        let (fx, fy) = (x as f32, y as f32);
        if (fx - cx).powi(2) + (fy - cy).powi(2) < r * r {
            return image::Rgb(sun.map(|c| c as u8));
        }
        let t = (fx + fy) / (480.0 + 360.0);
        image::Rgb([0, 1, 2].map(|i| (from[i] + (to[i] - from[i]) * t) as u8))
    });
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 85).encode_image(&image)?;
    Ok(bytes)
}
