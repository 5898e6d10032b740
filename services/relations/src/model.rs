//! Request and response bodies of the relations API.

use agora_common::pagination::PageParams;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// A person in a list (followers, following, friends, matches, blocks).
#[derive(Debug, Clone, Serialize, ToSchema, diesel::QueryableByName)]
pub struct Person {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub username: String,
    /// When the relation began.
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub since: DateTime<Utc>,
}

/// A page of people.
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonPage {
    pub items: Vec<Person>,
    /// Cursor of the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// `POST /relations/friend-requests`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FriendRequestCreate {
    /// Who is asked.
    pub to: Uuid,
}

/// The state of a friend request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RequestStatus {
    Pending,
    Accepted,
}

/// A friend request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FriendRequest {
    pub id: Uuid,
    pub from: Uuid,
    pub to: Uuid,
    pub status: RequestStatus,
    pub created_at: DateTime<Utc>,
}

/// A page of pending friend requests.
#[derive(Debug, Serialize, ToSchema)]
pub struct FriendRequestPage {
    pub items: Vec<FriendRequest>,
    /// Cursor of the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// Which pending requests to list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Sent to the caller.
    #[default]
    Incoming,
    /// Sent by the caller.
    Outgoing,
}

/// `GET /relations/friend-requests` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FriendRequestQuery {
    /// `incoming` (default) or `outgoing`.
    #[param(inline)]
    pub direction: Option<Direction>,
    #[serde(flatten)]
    #[param(ignore)]
    pub page: PageParams,
}

/// `PUT /relations/likes/{user_id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LikeOutcome {
    /// Both like each other now.
    pub matched: bool,
}

/// `GET /relations/suggestions` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SuggestionQuery {
    /// How many, 1..=100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Who a suggestion is.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserRef {
    pub id: Uuid,
    pub username: String,
}

/// Why someone is suggested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SuggestionReason {
    /// Friends in common.
    MutualFriends,
    /// People the caller follows follow them.
    FollowedByYourFollowees,
    /// Among the most followed people (when the caller's own graph gives too few).
    Popular,
}

impl SuggestionReason {
    /// The strongest reason the counts give.
    pub fn of(mutual_friends: i64, followed_by_your_followees: i64) -> Self {
        if mutual_friends > 0 {
            Self::MutualFriends
        } else if followed_by_your_followees > 0 {
            Self::FollowedByYourFollowees
        } else {
            Self::Popular
        }
    }
}

/// Someone the caller may know.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Suggestion {
    pub user: UserRef,
    /// Why: `mutual_friends`, `followed_by_your_followees`, or `popular` for the most
    /// followed people that fill a list the caller's graph leaves short.
    pub reason: SuggestionReason,
    /// `2 × mutual_friends + followed_by_your_followees`.
    pub score: i64,
    /// Friends the caller and this person have in common.
    pub mutual_friends: i64,
    /// How many of the people the caller follows follow this person.
    pub followed_by_your_followees: i64,
}

/// The suggestions, best first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuggestionList {
    pub items: Vec<Suggestion>,
}

/// Where a friend request stands between the caller and someone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PendingRequest {
    None,
    /// They asked the caller.
    Incoming,
    /// The caller asked them.
    Outgoing,
}

/// `GET /relations/users/{id}/summary`: someone's counts and their relation to the caller.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Summary {
    pub followers: i64,
    pub following: i64,
    pub friends: i64,
    /// The caller follows them.
    pub is_following: bool,
    /// They follow the caller.
    pub is_followed_by: bool,
    pub is_friend: bool,
    pub friend_request: PendingRequest,
    /// The caller blocks them.
    pub blocked: bool,
}

pub use agora_common::relations::{Counts, CountsRequest, Graph, Pair};
