//! Raw SQL that each connection prepares once and then only binds and executes.
//!
//! diesel's `sql_query` is never cached: every call parses the text, plans it and costs
//! a second round trip to describe the unnamed statement. A [`Statement`] is keyed in
//! diesel's per-connection statement cache by its text, like the query builder's own
//! queries. Only statements whose plan does not depend on the values bound belong here:
//! after five executions PostgreSQL may switch a prepared statement to a generic plan.
//!
//! ```text
//! static PAGE: LazyLock<Statement> = LazyLock::new(|| Statement::new("… $1 … $2 … $1"));
//! PAGE.query().bind::<Uuid, _>(viewer).bind::<BigInt, _>(rows).load::<Row>(conn)
//! ```
//!
//! Placeholders are `$1` … `$n` and may repeat; values are bound in `$n` order.
//!
//! A statement whose best plan depends on its values ([`Statement::per_call`]) keeps the
//! same interface but is parsed and planned with its values on every call, as
//! `sql_query` is.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::{Error, QueryResult};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};
use std::marker::PhantomData;

/// SQL text split at its placeholders, built once (keep it in a `static`).
#[derive(Debug)]
pub struct Statement {
    /// The text around the placeholders: one more piece than placeholders.
    pieces: Vec<String>,
    /// Per placeholder, the 0-based index of the value it stands for.
    slots: Vec<usize>,
    /// Kept in the connection's statement cache (and so, after five calls, possibly
    /// run with a generic plan).
    cached: bool,
}

impl Statement {
    /// Splits `sql` at its `$n` placeholders (not inside quoted literals or identifiers).
    pub fn new(sql: &str) -> Self {
        let mut pieces = Vec::new();
        let mut slots = Vec::new();
        let mut piece = String::with_capacity(sql.len());
        let mut quote: Option<char> = None;
        let mut chars = sql.chars().peekable();
        while let Some(c) = chars.next() {
            match (quote, c) {
                (None, '\'' | '"') => quote = Some(c),
                (Some(q), _) if q == c => quote = None,
                (None, '$') if chars.peek().is_some_and(char::is_ascii_digit) => {
                    let mut n = 0usize;
                    while let Some(digit) = chars.peek().and_then(|d| d.to_digit(10)) {
                        n = n * 10 + digit as usize;
                        chars.next();
                    }
                    pieces.push(std::mem::take(&mut piece));
                    slots.push(n.saturating_sub(1));
                    continue;
                }
                _ => {}
            }
            piece.push(c);
        }
        pieces.push(piece);
        Statement {
            pieces,
            slots,
            cached: true,
        }
    }

    /// A statement planned with its values on every call, never cached: for queries
    /// whose plan must see the values (e.g. how many ids an array holds).
    pub fn per_call(sql: &str) -> Self {
        Statement {
            cached: false,
            ..Self::new(sql)
        }
    }

    /// A query of this statement, its values still to bind.
    pub fn query(&'static self) -> Prepared<NoValues> {
        Prepared {
            statement: self,
            values: NoValues,
        }
    }
}

/// A [`Statement`] with values bound so far; load or execute it with
/// `diesel_async::RunQueryDsl` (rows are `QueryableByName`).
#[must_use = "a query does nothing until it is loaded or executed"]
pub struct Prepared<V> {
    statement: &'static Statement,
    values: V,
}

impl<V> Prepared<V> {
    /// Binds the next value (`$1` first) as SQL type `ST`.
    pub fn bind<ST, T>(self, value: T) -> Prepared<Value<V, ST, T>> {
        Prepared {
            statement: self.statement,
            values: Value {
                before: self.values,
                value,
                sql_type: PhantomData,
            },
        }
    }
}

/// The values of a [`Prepared`] query, in order.
pub trait Values {
    /// How many values.
    const COUNT: usize;
    /// Binds value `index` at the current position of `out`.
    fn push<'b>(&'b self, index: usize, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()>;
}

/// No values yet.
pub struct NoValues;

impl Values for NoValues {
    const COUNT: usize = 0;

    fn push<'b>(&'b self, index: usize, _out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        Err(Error::QueryBuilderError(
            format!(
                "the statement uses ${} but no value was bound for it",
                index + 1
            )
            .into(),
        ))
    }
}

/// The values before, and one more of SQL type `ST`.
pub struct Value<V, ST, T> {
    before: V,
    value: T,
    sql_type: PhantomData<ST>,
}

impl<V, ST, T> Values for Value<V, ST, T>
where
    V: Values,
    Pg: HasSqlType<ST>,
    T: ToSql<ST, Pg>,
{
    const COUNT: usize = V::COUNT + 1;

    fn push<'b>(&'b self, index: usize, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        if index == V::COUNT {
            out.push_bind_param::<ST, T>(&self.value)
        } else {
            self.before.push(index, out)
        }
    }
}

impl<V: Values> QueryFragment<Pg> for Prepared<V> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let Statement {
            pieces,
            slots,
            cached,
        } = self.statement;
        if !cached {
            out.unsafe_to_cache_prepared();
        }
        // A repeated placeholder is bound once per use: the text diesel prepares numbers
        // its parameters in order of appearance.
        for (piece, &slot) in pieces.iter().zip(slots) {
            out.push_sql(piece);
            if slot >= V::COUNT {
                return Err(Error::QueryBuilderError(
                    format!("the statement uses ${} but binds {}", slot + 1, V::COUNT).into(),
                ));
            }
            self.values.push(slot, &mut out)?;
        }
        if let Some(last) = pieces.last() {
            out.push_sql(last);
        }
        Ok(())
    }
}

// No static id: diesel keys the cached statement by its SQL text and bind types.
impl<V> QueryId for Prepared<V> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<V> Query for Prepared<V> {
    type SqlType = Untyped;
}

impl<V, Conn> diesel::RunQueryDsl<Conn> for Prepared<V> {}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::debug_query;
    use diesel::sql_types::{BigInt, Text};

    #[test]
    fn placeholders_split_outside_quotes_and_may_repeat() {
        let statement =
            Statement::new("SELECT '$1', \"$2\" FROM t WHERE a = $2 AND b = $1 OR c = $2");
        assert_eq!(statement.slots, vec![1, 0, 1]);
        assert_eq!(statement.pieces[0], "SELECT '$1', \"$2\" FROM t WHERE a = ");
        assert_eq!(statement.pieces[3], "");
    }

    #[test]
    fn repeated_placeholders_are_numbered_in_order_of_use() {
        static SQL: std::sync::LazyLock<Statement> =
            std::sync::LazyLock::new(|| Statement::new("SELECT $2, $1, $2, $10"));
        let query = SQL
            .query()
            .bind::<Text, _>("a")
            .bind::<BigInt, _>(2_i64)
            .bind::<Text, _>("c")
            .bind::<Text, _>("d")
            .bind::<Text, _>("e")
            .bind::<Text, _>("f")
            .bind::<Text, _>("g")
            .bind::<Text, _>("h")
            .bind::<Text, _>("i")
            .bind::<Text, _>("j");
        let shown = debug_query::<Pg, _>(&query).to_string();
        assert!(
            shown.starts_with("SELECT $1, $2, $3, $4 -- binds: [2, \"a\", 2, \"j\"]"),
            "{shown}"
        );
    }

    #[test]
    fn only_per_call_statements_stay_out_of_the_statement_cache() {
        static CACHED: std::sync::LazyLock<Statement> =
            std::sync::LazyLock::new(|| Statement::new("SELECT $1"));
        static PER_CALL: std::sync::LazyLock<Statement> =
            std::sync::LazyLock::new(|| Statement::per_call("SELECT $1"));
        let cached = CACHED.query().bind::<Text, _>("a");
        let per_call = PER_CALL.query().bind::<Text, _>("a");
        assert!(cached.is_safe_to_cache_prepared(&Pg).unwrap());
        assert!(!per_call.is_safe_to_cache_prepared(&Pg).unwrap());
    }

    #[test]
    fn a_placeholder_without_a_value_is_an_error_not_a_panic() {
        static SQL: std::sync::LazyLock<Statement> =
            std::sync::LazyLock::new(|| Statement::new("SELECT $1, $2"));
        let query = SQL.query().bind::<Text, _>("only one");
        let mut builder = diesel::pg::PgQueryBuilder::default();
        let err = query.to_sql(&mut builder, &Pg).unwrap_err();
        assert!(err.to_string().contains("$2"), "{err}");
    }
}
