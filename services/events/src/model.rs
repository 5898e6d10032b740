//! Request and response bodies of the events API, and their validation.

use agora_common::FieldError;
use agora_common::pagination::PageParams;
use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Longest title, in characters.
pub const MAX_TITLE: usize = 200;
/// Longest description.
pub const MAX_DESCRIPTION: usize = 5000;
/// Longest location.
pub const MAX_LOCATION: usize = 200;

/// Who can see an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventVisibility {
    /// Everyone signed in.
    Public,
    /// The organizer and the organizer's friends.
    Friends,
}

impl EventVisibility {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Friends => "friends",
        }
    }

    /// The stored form back (the column has a CHECK constraint).
    pub fn parse(stored: &str) -> Self {
        if stored == "friends" {
            Self::Friends
        } else {
            Self::Public
        }
    }
}

/// An answer to an invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RsvpStatus {
    Going,
    Interested,
    NotGoing,
}

impl RsvpStatus {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Going => "going",
            Self::Interested => "interested",
            Self::NotGoing => "not_going",
        }
    }

    /// The stored form back (the column has a CHECK constraint).
    pub fn parse(stored: &str) -> Self {
        match stored {
            "going" => Self::Going,
            "interested" => Self::Interested,
            _ => Self::NotGoing,
        }
    }
}

/// Someone named on an event: its organizer, an attendee.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = EventPerson)]
pub struct Person {
    pub id: Uuid,
    pub username: String,
}

/// How many answered what.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct RsvpCounts {
    pub going: i64,
    pub interested: i64,
    pub not_going: i64,
}

/// An event as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Event {
    pub id: Uuid,
    pub organizer: Person,
    pub title: String,
    pub description: Option<String>,
    pub starts_at: DateTime<Utc>,
    /// After `starts_at` when set.
    pub ends_at: Option<DateTime<Utc>>,
    pub location: Option<String>,
    pub visibility: EventVisibility,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Answers per status.
    pub rsvp_counts: RsvpCounts,
    /// The caller's own answer, if any.
    pub my_rsvp: Option<RsvpStatus>,
}

/// A page of events, soonest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub items: Vec<Event>,
    /// Cursor of the next page, `null` on the last one.
    pub next_cursor: Option<String>,
}

/// `POST /events`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventCreate {
    /// 1..=200 characters, not only spaces (no NUL).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000]*[^\\u0000\\s][^\\u0000]*$"
    )]
    pub title: String,
    /// At most 5000 characters (no NUL).
    #[schema(max_length = 5000, pattern = "^[^\\u0000]*$", nullable)]
    pub description: Option<String>,
    pub starts_at: DateTime<Utc>,
    /// Must be after `starts_at`.
    #[schema(nullable)]
    pub ends_at: Option<DateTime<Utc>>,
    /// At most 200 characters (no NUL).
    #[schema(max_length = 200, pattern = "^[^\\u0000]*$", nullable)]
    pub location: Option<String>,
    pub visibility: EventVisibility,
}

/// `PATCH /events/{id}`: any of the fields; `null` (or `""`) clears `description`,
/// `ends_at` and `location`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventPatch {
    /// 1..=200 characters, not only spaces (no NUL).
    #[serde(default, deserialize_with = "agora_common::extract::present")]
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000]*[^\\u0000\\s][^\\u0000]*$"
    )]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "agora_common::extract::nullable")]
    #[schema(value_type = Option<String>, max_length = 5000, pattern = "^[^\\u0000]*$", nullable)]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "agora_common::extract::present")]
    #[schema(nullable = false)]
    pub starts_at: Option<DateTime<Utc>>,
    /// Must be after `starts_at` (the new one, or the current one); `null` or `""`
    /// clears it.
    #[serde(default, deserialize_with = "clearable_instant")]
    #[schema(value_type = Option<String>, nullable, pattern = r"^(|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2}))$")]
    pub ends_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "agora_common::extract::nullable")]
    #[schema(value_type = Option<String>, max_length = 200, pattern = "^[^\\u0000]*$", nullable)]
    pub location: Option<Option<String>>,
    #[serde(default, deserialize_with = "agora_common::extract::present")]
    #[schema(nullable = false)]
    pub visibility: Option<EventVisibility>,
}

/// A PATCH instant that `null` or `""` clears (as `""` clears the patch's text fields):
/// absent is `None`, cleared `Some(None)`, an RFC 3339 instant `Some(Some(at))`.
fn clearable_instant<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<DateTime<Utc>>>, D::Error> {
    match <Option<String> as Deserialize>::deserialize(d)? {
        None => Ok(Some(None)),
        Some(text) if text.is_empty() => Ok(Some(None)),
        Some(text) => DateTime::parse_from_rfc3339(&text)
            .map(|at| Some(Some(at.with_timezone(&Utc))))
            .map_err(|_| {
                serde::de::Error::custom(
                    "must be an RFC 3339 instant (2030-06-01T18:00:00Z), or null or \"\" to clear it",
                )
            }),
    }
}

/// An event's fields, complete and valid: what is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFields {
    pub title: String,
    pub description: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    pub location: Option<String>,
    pub visibility: EventVisibility,
}

/// Whether an instant is one the API stores (years 1 to 9999, as RFC 3339 writes them).
pub fn storable(at: DateTime<Utc>) -> bool {
    (1..=9999).contains(&at.year())
}

fn check_instant(errors: &mut Vec<FieldError>, field: &'static str, at: Option<DateTime<Utc>>) {
    if at.is_some_and(|at| !storable(at)) {
        errors.push(FieldError::new(field, "must be in the years 0001 to 9999"));
    }
}

fn check_text(
    errors: &mut Vec<FieldError>,
    field: &'static str,
    value: Option<String>,
    max: usize,
) -> Option<String> {
    let value = value.filter(|v| !v.is_empty());
    if let Some(v) = &value
        && (v.chars().count() > max || v.contains('\0'))
    {
        errors.push(FieldError::new(
            field,
            format!("must be at most {max} characters, without NUL"),
        ));
    }
    value
}

impl EventFields {
    /// Validates every field, reporting all problems at once.
    pub fn validate(
        title: String,
        description: Option<String>,
        starts_at: DateTime<Utc>,
        ends_at: Option<DateTime<Utc>>,
        location: Option<String>,
        visibility: EventVisibility,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let title_chars = title.chars().count();
        if title_chars == 0
            || title_chars > MAX_TITLE
            || title.contains('\0')
            || title.trim().is_empty()
        {
            errors.push(FieldError::new(
                "title",
                "must be 1 to 200 characters, not only spaces, without NUL",
            ));
        }
        let description = check_text(&mut errors, "description", description, MAX_DESCRIPTION);
        let location = check_text(&mut errors, "location", location, MAX_LOCATION);
        check_instant(&mut errors, "starts_at", Some(starts_at));
        check_instant(&mut errors, "ends_at", ends_at);
        if ends_at.is_some_and(|end| end <= starts_at) {
            errors.push(FieldError::new("ends_at", "must be after starts_at"));
        }
        if errors.is_empty() {
            Ok(Self {
                title,
                description,
                starts_at,
                ends_at,
                location,
                visibility,
            })
        } else {
            Err(errors)
        }
    }

    /// The fields of a new event.
    pub fn create(body: EventCreate) -> Result<Self, Vec<FieldError>> {
        Self::validate(
            body.title,
            body.description,
            body.starts_at,
            body.ends_at,
            body.location,
            body.visibility,
        )
    }

    /// These fields with a patch applied, validated as a whole (an `ends_at` must
    /// follow the `starts_at` the event will have).
    pub fn patched(self, patch: EventPatch) -> Result<Self, Vec<FieldError>> {
        Self::validate(
            patch.title.unwrap_or(self.title),
            patch.description.unwrap_or(self.description),
            patch.starts_at.unwrap_or(self.starts_at),
            patch.ends_at.unwrap_or(self.ends_at),
            patch.location.unwrap_or(self.location),
            patch.visibility.unwrap_or(self.visibility),
        )
    }
}

/// `GET /events` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// Events starting at or after this instant (default: now, and then the events in
    /// progress now are listed too).
    pub from: Option<DateTime<Utc>>,
    /// Events starting before this instant (default: no end); after `from`.
    pub to: Option<DateTime<Utc>>,
    /// Only this organizer's events.
    pub organizer: Option<Uuid>,
    #[serde(flatten)]
    #[param(ignore)]
    pub page: PageParams,
}

/// `PUT /events/{id}/rsvp`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RsvpRequest {
    pub status: RsvpStatus,
}

/// `GET /events/{id}/attendees` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AttendeeQuery {
    /// Only the people who answered this.
    pub status: Option<RsvpStatus>,
    #[serde(flatten)]
    #[param(ignore)]
    pub page: PageParams,
}

/// Someone's answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Attendee {
    pub user: Person,
    pub status: RsvpStatus,
    /// When they first answered (the list's order).
    pub responded_at: DateTime<Utc>,
    /// When they last changed their answer.
    pub updated_at: DateTime<Utc>,
}

/// A page of attendees in answer order, with the event's counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttendeePage {
    pub items: Vec<Attendee>,
    /// Cursor of the next page, `null` on the last one.
    pub next_cursor: Option<String>,
    /// Answers per status (for the whole event, whatever `status` filters).
    pub counts: RsvpCounts,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap_or_default()
    }

    fn fields() -> EventFields {
        EventFields {
            title: "Picnic".into(),
            description: None,
            starts_at: at("2030-06-01T12:00:00Z"),
            ends_at: Some(at("2030-06-01T15:00:00Z")),
            location: None,
            visibility: EventVisibility::Public,
        }
    }

    #[test]
    fn ends_must_follow_starts_after_a_patch() {
        let moved = EventPatch {
            starts_at: Some(at("2030-06-01T16:00:00Z")),
            ..EventPatch::default()
        };
        let errors = fields().patched(moved).err().unwrap_or_default();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "ends_at");
        let moved_both = EventPatch {
            starts_at: Some(at("2030-06-01T16:00:00Z")),
            ends_at: Some(Some(at("2030-06-01T17:00:00Z"))),
            ..EventPatch::default()
        };
        assert!(fields().patched(moved_both).is_ok());
        let cleared = EventPatch {
            starts_at: Some(at("2030-06-01T16:00:00Z")),
            ends_at: Some(None),
            ..EventPatch::default()
        };
        assert_eq!(
            fields().patched(cleared).ok().map(|f| f.ends_at),
            Some(None)
        );
    }

    #[test]
    fn every_bad_field_is_reported() {
        let errors = EventFields::validate(
            "   ".into(),
            Some("x".repeat(5001)),
            at("2030-06-01T12:00:00Z"),
            Some(at("2030-06-01T12:00:00Z")),
            Some("nul\0".into()),
            EventVisibility::Friends,
        )
        .err()
        .unwrap_or_default();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_ref()).collect();
        assert_eq!(fields, ["title", "description", "location", "ends_at"]);
    }

    #[test]
    fn empty_optional_text_is_absent() {
        let f = EventFields::validate(
            "Picnic".into(),
            Some(String::new()),
            at("2030-06-01T12:00:00Z"),
            None,
            Some(String::new()),
            EventVisibility::Public,
        );
        assert_eq!(
            f.ok().map(|f| (f.description, f.location)),
            Some((None, None))
        );
    }
}
