//! A span per database statement, from diesel's instrumentation hook: the operation
//! and the parameterised SQL (placeholders, never the values bound to them).
//! Statements made outside any span (a job runner polling) are not traced: they would
//! each be a trace of their own; nor are those of a trace that is not sampled.

use diesel::connection::{Instrumentation, InstrumentationEvent};
use std::fmt::Write as _;
use tracing::field::Empty;

/// Longest SQL text kept on a span.
const SQL_MAX: usize = 2048;
/// Enough text to know the statement's kind.
const KEYWORD_MAX: usize = 16;

/// Every connection opened from now on gets a [`QuerySpans`] (once per process).
pub(crate) fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = diesel::connection::set_default_instrumentation(|| {
            Some(Box::new(QuerySpans::default()))
        });
    });
}

/// The instrumentation of one connection (its statements run one after another):
/// every statement is timed for `agora_db_query_duration_seconds`; traced ones also
/// get a span.
#[derive(Default)]
struct QuerySpans {
    open: Option<tracing::Span>,
    started: Option<(std::time::Instant, &'static str)>,
}

impl Instrumentation for QuerySpans {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartQuery { query, .. } => {
                let traced = super::current_sampled();
                let sql = sql_text(query, if traced { SQL_MAX } else { KEYWORD_MAX });
                let operation = operation(&sql);
                self.started = Some((std::time::Instant::now(), operation));
                if !traced {
                    return;
                }
                self.open = Some(tracing::info_span!(
                    "db.query",
                    otel.name = operation,
                    otel.kind = "client",
                    otel.status_code = Empty,
                    db.system.name = "postgresql",
                    db.operation.name = operation,
                    db.query.text = %sql,
                    error.type = Empty,
                ));
            }
            InstrumentationEvent::FinishQuery { error, .. } => {
                if let Some((at, operation)) = self.started.take() {
                    let kit = crate::metrics::kit();
                    kit.queries
                        .get_or_create(&crate::metrics::QueryLabels { operation })
                        .observe(at.elapsed().as_secs_f64());
                    if let Some(error) = error {
                        let kind = error_type(error);
                        // "no row" is an answer, not a failure.
                        if kind != "not_found" {
                            kit.db_errors
                                .get_or_create(&crate::metrics::ErrorLabels { kind })
                                .inc();
                        }
                    }
                }
                if let Some(span) = self.open.take()
                    && let Some(error) = error
                {
                    span.record("otel.status_code", "ERROR");
                    span.record("error.type", error_type(error));
                }
            }
            _ => {}
        }
    }
}

/// Collects the statement's text and stops where diesel starts writing the bound
/// values (`-- binds: [...]`), so they are never even formatted.
struct SqlOnly {
    text: String,
    max: usize,
}

impl std::fmt::Write for SqlOnly {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if let Some(at) = s.find(" -- binds: ") {
            self.text.push_str(&s[..at]);
            return Err(std::fmt::Error);
        }
        self.text.push_str(s);
        if self.text.len() > self.max {
            return Err(std::fmt::Error);
        }
        Ok(())
    }
}

fn sql_text(query: &dyn diesel::connection::DebugQuery, max: usize) -> String {
    let mut out = SqlOnly {
        text: String::with_capacity(max.min(256)),
        max,
    };
    // Stopping early is the point: the error only means "enough".
    let _ = write!(out, "{query}");
    let mut text = out.text;
    if let Some(at) = text.find(" -- binds: ") {
        text.truncate(at);
    }
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// The statement's kind from its first keyword (bounded: anything else is `OTHER`).
pub(crate) fn operation(sql: &str) -> &'static str {
    let word = sql
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default();
    const KNOWN: [&str; 12] = [
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
        "WITH",
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "SET",
        "CREATE",
        "LOCK",
        "SAVEPOINT",
    ];
    KNOWN
        .into_iter()
        .find(|k| k.eq_ignore_ascii_case(word))
        .unwrap_or("OTHER")
}

fn error_type(error: &diesel::result::Error) -> &'static str {
    match crate::db::classify(error) {
        crate::db::Failure::NotFound => "not_found",
        crate::db::Failure::Unique => "unique_violation",
        crate::db::Failure::ForeignKey => "foreign_key_violation",
        crate::db::Failure::Retryable => "serialization_failure",
        crate::db::Failure::Timeout => "timeout",
        crate::db::Failure::Unavailable => "unavailable",
        crate::db::Failure::Other => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_bounded() {
        assert_eq!(operation("select 1"), "SELECT");
        assert_eq!(operation("  INSERT INTO x"), "INSERT");
        assert_eq!(operation("VACUUM"), "OTHER");
        assert_eq!(operation(""), "OTHER");
    }

    #[test]
    fn bound_values_never_reach_the_text() {
        use diesel::prelude::*;
        diesel::table! { people (id) { id -> Integer, email -> Text } }
        let query = people::table
            .filter(people::email.eq("secret@example.com"))
            .select(people::id);
        let debug = diesel::debug_query::<diesel::pg::Pg, _>(&query);
        let text = sql_text(&debug, SQL_MAX);
        assert!(text.contains("\"people\".\"email\" = $1"), "{text}");
        assert!(!text.contains("secret"), "{text}");
    }
}
