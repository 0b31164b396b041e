//! The one way a request body is checked, in every app: the handler names a typed input
//! (`Valid<OrgInput>`, or `Patch<OrgInput>` for a partial update) whose [`FromBody`] reads each
//! field through [`Body`]'s typed readers. Every bad field is reported at once as
//! [`Error::Fields`], which each app's [`crate::ErrorFormat`] renders in its own shape (DRF's
//! `{"field": ["message"]}`, Streetlight's envelope, ...), with DRF's messages; unknown and
//! read-only fields are ignored, and a partial update only looks at the fields that are
//! present. The same input type derives `ToSchema`, so the documented schema and the checked
//! struct cannot drift apart.

use std::ops::RangeInclusive;
use std::str::FromStr;

use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::{Error, Json, Result};

pub const REQUIRED: &str = "This field is required.";
pub const BLANK: &str = "This field may not be blank.";

/// A request input built from a checked [`Body`]. `from_body` reads every field (recording
/// each bad one in the body); the value is only handed to a handler when no field was bad, so
/// a default standing in for a bad field is never seen.
pub trait FromBody: Sized {
    fn from_body(body: &mut Body) -> Self;
}

/// A whole, checked request body: `Valid(input): Valid<T>`.
pub struct Valid<T>(pub T);

/// A checked partial update (`PATCH`, or `PUT` where the seed calls it partial): required
/// fields may be absent.
pub struct Patch<T>(pub T);

impl<S: Send + Sync, T: FromBody> FromRequest<S> for Valid<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        Body::from_request(req, state).await?.read().map(Valid)
    }
}

impl<S: Send + Sync, T: FromBody> FromRequest<S> for Patch<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        Body::from_request(req, state)
            .await?
            .partial()
            .read()
            .map(Patch)
    }
}

/// A JSON object body. Malformed JSON or a non-object is a `detail` error.
pub struct Body {
    map: Map<String, Value>,
    partial: bool,
    errors: Vec<(String, String)>,
    /// Set by [`Body::typed`]: a field of the wrong type refuses the whole body.
    refused: Option<String>,
}

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        let Json(value) = Json::<Value>::from_request(req, state).await?;
        match value {
            Value::Object(map) => Ok(Self {
                map,
                partial: false,
                errors: Vec::new(),
                refused: None,
            }),
            _ => Err(Error::bad_request(
                "Invalid data. Expected a dictionary, but got a different type.",
            )),
        }
    }
}

impl Body {
    /// A body from a JSON value already in hand (a non-object reads as empty).
    pub fn of(value: Value) -> Self {
        Self {
            map: value.as_object().cloned().unwrap_or_default(),
            partial: false,
            errors: Vec::new(),
            refused: None,
        }
    }

    /// Required fields may be absent (an update).
    pub fn partial(mut self) -> Self {
        self.partial = true;
        self
    }

    pub fn error(&mut self, field: &str, msg: impl Into<String>) {
        self.errors.push((field.to_owned(), msg.into()));
    }

    /// `T` read from this body, or every field error as one 400.
    pub fn read<T: FromBody>(mut self) -> Result<T> {
        let value = T::from_body(&mut self);
        self.finish().map(|()| value)
    }

    /// Whether required fields may be absent (a [`Patch`]), for a reader whose rule differs.
    pub fn is_partial(&self) -> bool {
        self.partial
    }

    /// All errors so far as one 400.
    pub fn finish(self) -> Result<()> {
        if let Some(msg) = self.refused {
            return Err(Error::BadRequest(msg));
        }
        match self.errors.is_empty() {
            true => Ok(()),
            false => Err(Error::Fields(self.errors)),
        }
    }

    /// The field's value when present and not null; records the error for a missing required
    /// field (`required`, outside a partial update) or a null one.
    fn value(&mut self, field: &str, required: bool, nullable: bool) -> Option<Value> {
        match self.map.get(field).cloned() {
            None if required && !self.partial => {
                self.error(field, REQUIRED);
                None
            }
            Some(Value::Null) if !nullable => {
                self.error(field, "This field may not be null.");
                None
            }
            other => other.filter(|v| !v.is_null()),
        }
    }

    /// Whether the body names the field (even as null).
    pub fn has(&self, field: &str) -> bool {
        self.map.contains_key(field)
    }

    /// A trimmed string of at most `max` characters; `blank` allows "".
    pub fn string(
        &mut self,
        field: &str,
        required: bool,
        blank: bool,
        max: usize,
    ) -> Option<String> {
        let s = match self.value(field, required, false)? {
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) => n.to_string(),
            _ => return self.fail(field, "Not a valid string."),
        };
        if s.is_empty() && !blank {
            return self.fail(field, BLANK);
        }
        if s.chars().count() > max {
            return self.fail(
                field,
                format!("Ensure this field has no more than {max} characters."),
            );
        }
        Some(s)
    }

    /// A trimmed, non-blank [`Body::typed`] string: absent, null or blank is [`REQUIRED`],
    /// not [`BLANK`] (a partial update may leave it out, or send null, but not blank it).
    pub fn required_text(&mut self, field: &str) -> Option<String> {
        let text = self.typed::<String>(field, true)?.trim().to_owned();
        if text.is_empty() {
            return self.fail(field, REQUIRED);
        }
        Some(text)
    }

    /// An integer (or a string of one) within `range`.
    pub fn int(&mut self, field: &str, required: bool, range: RangeInclusive<i64>) -> Option<i64> {
        let n = match self.value(field, required, false)? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        let Some(n) = n else {
            return self.fail(field, "A valid integer is required.");
        };
        if n < *range.start() {
            return self.fail(
                field,
                format!(
                    "Ensure this value is greater than or equal to {}.",
                    range.start()
                ),
            );
        }
        if n > *range.end() {
            return self.fail(
                field,
                format!(
                    "Ensure this value is less than or equal to {}.",
                    range.end()
                ),
            );
        }
        Some(n)
    }

    pub fn bool(&mut self, field: &str, required: bool) -> Option<bool> {
        match self.value(field, required, false)? {
            Value::Bool(b) => Some(b),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => self.fail(field, "Must be a valid boolean."),
            },
            Value::Number(n) if n.as_i64() == Some(1) => Some(true),
            Value::Number(n) if n.as_i64() == Some(0) => Some(false),
            _ => self.fail(field, "Must be a valid boolean."),
        }
    }

    /// One of an enum's values, written as its exact name.
    pub fn choice<T: FromStr>(&mut self, field: &str, required: bool) -> Option<T> {
        let v = self.value(field, required, false)?;
        let text = match &v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match text.parse() {
            Ok(t) => Some(t),
            Err(_) => self.fail(field, format!("\"{text}\" is not a valid choice.")),
        }
    }

    /// A nullable decimal coordinate (`DecimalField(max_digits=9, decimal_places=6)`), as a
    /// number or a numeric string, within `±limit`, returned as the seed prints it:
    /// a string with 6 decimals. `None`: absent; `Some(None)`: null.
    pub fn coordinate(&mut self, field: &str, limit: f64) -> Option<Option<String>> {
        if !self.has(field) {
            return None;
        }
        let text = match self.value(field, false, true) {
            None => return Some(None),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) => s.trim().to_owned(),
            Some(_) => return self.fail(field, "A valid number is required."),
        };
        match decimal6(&text, limit) {
            Ok(v) => Some(Some(v)),
            Err(msg) => self.fail(field, msg),
        }
    }

    /// The value of a check shared with query strings or forms (which returns field errors as
    /// [`Error::Fields`]), its errors recorded here; any other error is DRF's
    /// `non_field_errors`.
    pub fn check<T>(&mut self, checked: Result<T>) -> Option<T> {
        match checked {
            Ok(v) => Some(v),
            Err(Error::Fields(errors)) => {
                self.errors.extend(errors);
                None
            }
            Err(e) => self.fail("non_field_errors", e.to_string()),
        }
    }

    /// A field read by serde's rules for `T`, as a typed JSON body (`Json<T>`) reads it: no
    /// coercion (`5` is no string) and null reads as absent ([`REQUIRED`] when `required`
    /// outside a partial update). A value of the wrong type refuses the whole body, as
    /// `Json<T>` does: [`Body::finish`] answers `Invalid request body: {field}: {serde's
    /// message}` (a `detail` error) before any field error. For apps whose clients rely on
    /// that strictness.
    pub fn typed<T: DeserializeOwned>(&mut self, field: &str, required: bool) -> Option<T> {
        let value = match self.map.get(field) {
            Some(v) if !v.is_null() => v.clone(),
            _ => {
                if required && !self.partial {
                    self.error(field, REQUIRED);
                }
                return None;
            }
        };
        match serde_json::from_value(value) {
            Ok(v) => Some(v),
            Err(e) => {
                let msg = format!("Invalid request body: {field}: {e}");
                self.refused.get_or_insert(msg);
                None
            }
        }
    }

    /// [`Body::string`]'s checks (trimmed, `blank` allows "", at most `max` characters) on a
    /// [`Body::typed`] string.
    pub fn strict_string(
        &mut self,
        field: &str,
        required: bool,
        blank: bool,
        max: usize,
    ) -> Option<String> {
        let s = self.typed::<String>(field, required)?.trim().to_owned();
        if s.is_empty() && !blank {
            return self.fail(field, BLANK);
        }
        if s.chars().count() > max {
            return self.fail(
                field,
                format!("Ensure this field has no more than {max} characters."),
            );
        }
        Some(s)
    }

    /// Refuses the whole body with the app's own message, as a [`Body::typed`] type error
    /// does: [`Body::finish`] answers it as a `detail` error before any field error, and the
    /// first refusal wins. For apps whose clients expect their own texts (`"x is required"`)
    /// rather than per-field ones. `None`, for a reader's early return.
    pub fn refuse<T>(&mut self, msg: impl Into<String>) -> Option<T> {
        if self.refused.is_none() {
            self.refused = Some(msg.into());
        }
        None
    }

    fn fail<T>(&mut self, field: &str, msg: impl Into<String>) -> Option<T> {
        self.error(field, msg);
        None
    }
}

/// Parses a decimal with at most 6 places within `±limit` into `"%.6f"`.
fn decimal6(text: &str, limit: f64) -> std::result::Result<String, String> {
    let number = text
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && !text.contains(['e', 'E', 'i', 'n', 'N']))
        .ok_or("A valid number is required.")?;
    let places = text.split_once('.').map_or(0, |(_, frac)| frac.len());
    if places > 6 {
        return Err("Ensure that there are no more than 6 decimal places.".into());
    }
    if number < -limit {
        return Err(format!(
            "Ensure this value is greater than or equal to -{limit}."
        ));
    }
    if number > limit {
        return Err(format!(
            "Ensure this value is less than or equal to {limit}."
        ));
    }
    Ok(format!("{number:.6}"))
}

/// An optional integer query parameter (`?org_id=`), DRF-style error when it is not one.
pub fn int_param(field: &str, value: Option<&str>) -> Result<Option<i64>> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| Error::field(field, "Enter a whole number.")),
    }
}

#[cfg(test)]
mod tests;
