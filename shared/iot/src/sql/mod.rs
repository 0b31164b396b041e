//! The subset of AWS IoT SQL (version 2016-03-23) that civic-local evaluates for topic rules:
//!
//! - `SELECT` `*`, fields (`a`, `a.b`), literals, `topic()`/`topic(n)`, `timestamp()`,
//!   `clientid()`, each with an optional `AS alias`;
//! - `FROM 'filter'` with `+` and `#`;
//! - `WHERE` with `=`, `<>`/`!=`, `<`, `<=`, `>`, `>=`, `AND`, `OR`, `NOT` and parentheses.
//!
//! Anything else is refused by [`Rule::parse`] with its position, never skipped, so a rule that
//! works locally means the same on IoT Core. Evaluation follows IoT Core where the subset
//! reaches: a missing field is *undefined* and left out of the output, a comparison of
//! different types is undefined, and a `WHERE` passes only when it is true.

mod eval;
mod lex;
mod parse;

use serde_json::Value;

pub use eval::Context;

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("IoT SQL, at character {pos}: {msg}")]
pub struct SqlError {
    /// 1-based character position in the statement.
    pub pos: usize,
    pub msg: String,
}

/// A parsed topic rule statement.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub select: Vec<Item>,
    /// The `FROM` topic filter.
    pub from: String,
    pub filter: Option<Expr>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// `*`: every key of the payload.
    All,
    Expr {
        expr: Expr,
        alias: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Lit(Value),
    /// `a.b.c`: a path into the payload.
    Field(Vec<String>),
    /// `topic()` (`None`) or `topic(n)`.
    Topic(Option<usize>),
    Timestamp,
    ClientId,
    Cmp(Cmp, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Rule {
    pub fn parse(sql: &str) -> Result<Self, SqlError> {
        parse::parse(sql)
    }

    /// The rule's output for a message on `ctx.topic`, or `None` when the topic does not
    /// match `FROM` or `WHERE` is not true.
    pub fn apply(&self, payload: &Value, ctx: &Context) -> Option<Value> {
        if !crate::topic::matches(&self.from, ctx.topic) {
            return None;
        }
        eval::apply(self, payload, ctx)
    }
}

#[cfg(test)]
mod tests;
