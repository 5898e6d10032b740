//! What `agora seed` creates, decided up front from the seed alone: people, who follows
//! and befriends whom (a power law: a few people are followed by many), what each one
//! posts, photographs, comments, reacts to, organizes and answers. The plan is pure data,
//! so the same seed gives the same plan whatever order the requests finish in.

/// A small, fast, well-mixed generator (SplitMix64): reproducible across platforms and
/// releases, unlike a library's default generator.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

const NAMES: [&str; 24] = [
    "ada", "alan", "grace", "linus", "margaret", "dennis", "barbara", "ken", "frances", "edsger",
    "hedy", "tim", "radia", "guido", "sophie", "niklaus", "karen", "donald", "annie", "john",
    "lynn", "bjarne", "mary", "vint",
];
const CITIES: [&str; 8] = [
    "Lyon",
    "Lisbon",
    "Montréal",
    "Nairobi",
    "Osaka",
    "Valparaíso",
    "Tallinn",
    "Dakar",
];
/// Photo tags: a few common ones and a long tail, as people tag.
pub const TAGS: [&str; 12] = [
    "sunset",
    "city",
    "food",
    "cat",
    "beach",
    "mountains",
    "friends",
    "street",
    "coffee",
    "books",
    "night",
    "garden",
];
const ROLES: [&str; 8] = [
    "Baker",
    "Developer",
    "Photographer",
    "Teacher",
    "Student",
    "Nurse",
    "Designer",
    "Runner",
];
const TOPICS: [&str; 10] = [
    "the new bakery downtown",
    "a long walk by the river",
    "rust's borrow checker",
    "this week's book club pick",
    "the concert last night",
    "learning to make bread",
    "a rainy afternoon",
    "the farmers' market",
    "my first marathon",
    "an old film I rewatched",
];
const MOODS: [&str; 6] = [
    "Loved",
    "Still thinking about",
    "Can't stop talking about",
    "Quick note on",
    "Finally tried",
    "Hot take on",
];
const REPLIES: [&str; 8] = [
    "So true!",
    "I was there too 😄",
    "Tell me more.",
    "Adding this to my list.",
    "Great photo!",
    "Haha, same here.",
    "Where was this?",
    "Congrats! 🎉",
];
/// Reactions people use most, most used first.
pub const EMOJI: [&str; 6] = ["👍", "😂", "🎉", "🔥", "😮", "🙏"];
const EVENTS: [&str; 6] = [
    "Picnic in the park",
    "Board game night",
    "Sunday run",
    "Book club",
    "Rooftop dinner",
    "Photo walk",
];
/// The three answers, in the API's words.
pub const RSVP: [&str; 3] = ["going", "interested", "not_going"];

/// A person to register.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub username: String,
    pub display_name: String,
    pub bio: String,
    pub location: String,
    pub website: String,
}

/// A photo to upload (the image itself is drawn from `pixels_seed`).
#[derive(Debug, Clone, PartialEq)]
pub struct Photo {
    pub owner: usize,
    pub tags: Vec<&'static str>,
    pub public: bool,
    pub caption: String,
    pub pixels_seed: u64,
}

/// Which photo a post shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PostPhoto {
    /// One of the author's own photos (an index into the plan's photos).
    Own(usize),
    /// Someone's public photo with this tag, found by search (reused, not re-uploaded).
    Found(&'static str),
}

/// A post, with what others do with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Post {
    pub author: usize,
    pub text: String,
    pub visibility: &'static str,
    pub link: Option<String>,
    pub photo: Option<PostPhoto>,
    /// `(commenter, text)`.
    pub comments: Vec<(usize, &'static str)>,
    /// `(reactor, emoji)`, one per person.
    pub reactions: Vec<(usize, &'static str)>,
}

/// An event, with its answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub organizer: usize,
    pub title: &'static str,
    pub location: &'static str,
    /// Hours from the seeding time.
    pub starts_in_hours: i64,
    pub friends_only: bool,
    /// `(person, answer)`.
    pub rsvps: Vec<(usize, &'static str)>,
}

/// Everything `agora seed` creates.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub people: Vec<Person>,
    /// `(follower, followee)`.
    pub follows: Vec<(usize, usize)>,
    /// `(asker, accepter)`, each pair once.
    pub friendships: Vec<(usize, usize)>,
    pub photos: Vec<Photo>,
    /// Per person, the photo (index into `photos`) used as the avatar.
    pub avatars: Vec<Option<usize>>,
    pub posts: Vec<Post>,
    pub events: Vec<Event>,
}

/// Sizes of a plan.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub users: usize,
    /// Average posts per person (the most active post several times more).
    pub posts_per_user: usize,
}

/// Picks `k` distinct indices from `0..weights.len()` with probability proportional to
/// their weights, never `exclude`.
fn weighted_distinct(rng: &mut Rng, weights: &[f64], k: usize, exclude: usize) -> Vec<usize> {
    let mut left: Vec<(usize, f64)> = weights
        .iter()
        .copied()
        .enumerate()
        .filter(|&(i, _)| i != exclude)
        .collect();
    let mut chosen = Vec::with_capacity(k);
    while chosen.len() < k && !left.is_empty() {
        let total: f64 = left.iter().map(|(_, w)| w).sum();
        let mut target = rng.unit() * total;
        let mut at = left.len() - 1;
        for (i, (_, w)) in left.iter().enumerate() {
            if target < *w {
                at = i;
                break;
            }
            target -= w;
        }
        chosen.push(left.swap_remove(at).0);
    }
    chosen
}

impl Plan {
    /// The plan for a seed. Usernames carry the seed, so two seeds can fill one platform.
    pub fn new(seed: u32, sizes: Sizes) -> Self {
        let mut rng = Rng::new(u64::from(seed));
        let n = sizes.users.max(2);
        let people: Vec<Person> = (0..n)
            .map(|i| {
                let name = NAMES[i % NAMES.len()];
                let city = rng.pick(&CITIES);
                Person {
                    username: format!("{name}_{seed}_{i}"),
                    display_name: format!("{}{} {}", name[..1].to_uppercase(), &name[1..], i),
                    bio: format!(
                        "{} in {city}. Into {}.",
                        rng.pick(&ROLES),
                        rng.pick(&TOPICS)
                    ),
                    location: city.to_owned(),
                    website: format!("https://{name}{i}.example.org/"),
                }
            })
            .collect();

        // Popularity follows a power law (Zipf, s = 1.1) over a random order of people;
        // how many people one follows is skewed too.
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let mut popularity = vec![0.0; n];
        for (rank, &person) in order.iter().enumerate() {
            popularity[person] = 1.0 / ((rank + 1) as f64).powf(1.1);
        }
        let mut follows = Vec::new();
        let most = (n - 1).min(40);
        for follower in 0..n {
            let k = (2.0 + (most as f64 - 2.0) * rng.unit().powi(3)).round() as usize;
            for followee in weighted_distinct(&mut rng, &popularity, k.min(n - 1), follower) {
                follows.push((follower, followee));
            }
        }
        // Friends among the people one follows: about one in four.
        let mut friendships = Vec::new();
        let mut paired = std::collections::HashSet::new();
        for &(a, b) in &follows {
            if rng.chance(0.25) && paired.insert((a.min(b), a.max(b))) {
                friendships.push((a, b));
            }
        }

        let mut photos = Vec::new();
        let mut avatars = Vec::with_capacity(n);
        for owner in 0..n {
            let count = 1 + rng.below(3);
            let first = photos.len();
            for _ in 0..count {
                let mut tags = Vec::new();
                for _ in 0..1 + rng.below(3) {
                    // Common tags more often: the square favours the first ones.
                    let tag = TAGS[(rng.unit().powi(2) * TAGS.len() as f64) as usize];
                    if !tags.contains(&tag) {
                        tags.push(tag);
                    }
                }
                photos.push(Photo {
                    owner,
                    caption: format!("{} #{}", rng.pick(&TOPICS), tags[0]),
                    tags,
                    public: rng.chance(0.8),
                    pixels_seed: rng.next_u64(),
                });
            }
            // An avatar is seen by everyone: only a public photo may be one.
            avatars.push((first..photos.len()).find(|&p| photos[p].public));
        }

        let followers_of = |person: usize| -> Vec<usize> {
            follows
                .iter()
                .filter(|&&(_, b)| b == person)
                .map(|&(a, _)| a)
                .collect()
        };
        let friends_of = |person: usize| -> Vec<usize> {
            friendships
                .iter()
                .filter_map(|&(a, b)| match (a == person, b == person) {
                    (true, _) => Some(b),
                    (_, true) => Some(a),
                    _ => None,
                })
                .collect()
        };
        let mut posts = Vec::new();
        for author in 0..n {
            // Activity is skewed: a few people post a lot.
            let count = (sizes.posts_per_user as f64 * 2.0 * rng.unit().powi(2)).round() as usize
                + usize::from(sizes.posts_per_user > 0);
            let own: Vec<usize> = (0..photos.len())
                .filter(|&p| photos[p].owner == author)
                .collect();
            for _ in 0..count {
                let roll = rng.unit();
                let visibility = if roll < 0.7 {
                    "public"
                } else if roll < 0.9 {
                    "friends"
                } else {
                    "private"
                };
                let audience = match visibility {
                    "public" => followers_of(author),
                    "friends" => friends_of(author),
                    _ => Vec::new(),
                };
                // Others see the post: only a public photo of the author's will do.
                let shown: Vec<usize> = own
                    .iter()
                    .copied()
                    .filter(|&p| visibility == "private" || photos[p].public)
                    .collect();
                let photo = match rng.unit() {
                    r if r < 0.3 && !shown.is_empty() => Some(PostPhoto::Own(rng.pick(&shown))),
                    r if r < 0.4 => Some(PostPhoto::Found(TAGS[rng.below(3)])),
                    _ => None,
                };
                let mut comments = Vec::new();
                let mut reactions = Vec::new();
                if !audience.is_empty() {
                    for _ in 0..rng.below(4) {
                        comments.push((rng.pick(&audience), rng.pick(&REPLIES)));
                    }
                    let mut reactors = audience.clone();
                    for _ in 0..rng.below(audience.len().min(8) + 1) {
                        let who = reactors.swap_remove(rng.below(reactors.len()));
                        let emoji = EMOJI[(rng.unit().powi(2) * EMOJI.len() as f64) as usize];
                        reactions.push((who, emoji));
                    }
                }
                posts.push(Post {
                    author,
                    text: format!("{} {}.", rng.pick(&MOODS), rng.pick(&TOPICS)),
                    visibility,
                    link: rng
                        .chance(0.2)
                        .then(|| format!("https://example.org/notes/{}", rng.below(1000))),
                    photo,
                    comments,
                    reactions,
                });
            }
        }

        let mut events = Vec::new();
        for organizer in 0..n {
            if !rng.chance(0.2) {
                continue;
            }
            let friends_only = rng.chance(0.3);
            let invited = if friends_only {
                friends_of(organizer)
            } else {
                followers_of(organizer)
            };
            let mut rsvps = Vec::new();
            for who in invited {
                if rng.chance(0.6) {
                    rsvps.push((who, RSVP[(rng.unit().powi(2) * 3.0) as usize]));
                }
            }
            events.push(Event {
                organizer,
                title: rng.pick(&EVENTS),
                location: rng.pick(&CITIES),
                starts_in_hours: 24 + rng.below(24 * 60) as i64,
                friends_only,
                rsvps,
            });
        }

        Self {
            people,
            follows,
            friendships,
            photos,
            avatars,
            posts,
            events,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZES: Sizes = Sizes {
        users: 60,
        posts_per_user: 4,
    };

    #[test]
    fn a_seed_gives_one_plan() {
        assert_eq!(Plan::new(7, SIZES), Plan::new(7, SIZES));
        assert_ne!(Plan::new(7, SIZES).follows, Plan::new(8, SIZES).follows);
    }

    #[test]
    fn followers_follow_a_power_law() {
        let plan = Plan::new(1, SIZES);
        let mut followers = vec![0usize; SIZES.users];
        for &(a, b) in &plan.follows {
            assert_ne!(a, b, "nobody follows themselves");
            followers[b] += 1;
        }
        followers.sort_unstable();
        let median = followers[SIZES.users / 2];
        let top = followers[SIZES.users - 1];
        assert!(top >= 4 * median.max(1), "top {top}, median {median}");
        let distinct: std::collections::HashSet<_> = plan.follows.iter().collect();
        assert_eq!(distinct.len(), plan.follows.len(), "no follow twice");
    }

    #[test]
    fn everyone_is_valid_for_the_api() {
        let plan = Plan::new(123_456, SIZES);
        for p in &plan.people {
            assert!((3..=32).contains(&p.username.len()), "{}", p.username);
            assert!(
                p.username
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            );
            assert!(p.display_name.chars().count() <= 64);
        }
        assert!(plan.posts.iter().all(|p| {
            p.reactions.len()
                == p.reactions
                    .iter()
                    .map(|r| r.0)
                    .collect::<std::collections::HashSet<_>>()
                    .len()
        }));
        assert!(plan.photos.iter().all(|p| (1..=3).contains(&p.tags.len())));
        assert!(!plan.events.is_empty() && !plan.friendships.is_empty());
    }
}
