//! CSV downloads that a spreadsheet opens without running anything in them.
//!
//! A cell beginning with `=`, `+`, `-` or `@` (or a tab or carriage return, which some
//! spreadsheets skip before reading a formula) is a formula to Excel, LibreOffice and Google
//! Sheets: `=HYPERLINK(...)` or `=cmd|' /C calc'!A0` in a device's `firmware` would run when
//! staff open the export. OWASP's advice, followed here: prefix such text cells with `'`, which
//! makes the spreadsheet read them as text. Numbers are typed cells and stay as they are, so a
//! negative counter is still a number. Quoting is the `csv` crate's.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::{Error, Result};

/// One cell: text is neutralised, numbers are written as they are.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i64),
    Float(f64),
    Empty,
}

impl From<String> for Cell {
    fn from(s: String) -> Self {
        Cell::Text(s)
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Cell::Text(s.to_owned())
    }
}

impl From<i64> for Cell {
    fn from(n: i64) -> Self {
        Cell::Int(n)
    }
}

impl From<f64> for Cell {
    fn from(x: f64) -> Self {
        Cell::Float(x)
    }
}

impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(v: Option<T>) -> Self {
        v.map_or(Cell::Empty, Into::into)
    }
}

/// The characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection).
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// `text` as a cell that no spreadsheet evaluates: prefixed with `'` when it could start a
/// formula, unchanged otherwise.
pub fn neutralize(text: &str) -> Cow<'_, str> {
    if text.starts_with(FORMULA_START) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

impl Cell {
    fn render(&self) -> Cow<'_, str> {
        match self {
            Cell::Text(s) => neutralize(s),
            Cell::Int(n) => Cow::Owned(n.to_string()),
            Cell::Float(x) => Cow::Owned(x.to_string()),
            Cell::Empty => Cow::Borrowed(""),
        }
    }
}

/// The rows as CSV bytes, header first.
pub fn to_bytes(rows: impl IntoIterator<Item = Vec<Cell>>) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in rows {
        w.write_record(row.iter().map(|c| c.render().into_owned()))
            .map_err(|e| Error::Internal(e.to_string()))?;
    }
    w.into_inner().map_err(|e| Error::Internal(e.to_string()))
}

/// A header row of column names.
pub fn header_row(names: &[&str]) -> Vec<Cell> {
    names.iter().map(|n| Cell::from(*n)).collect()
}

/// A `text/csv` download named `filename` (a constant of the app's, not user input).
pub fn response(rows: impl IntoIterator<Item = Vec<Cell>>, filename: &str) -> Result<Response> {
    let bytes = to_bytes(rows)?;
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
        .map_err(|e| Error::Internal(e.to_string()))?;
    let content_type = HeaderValue::from_static("text/csv; charset=utf-8");
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_text_is_neutralized_and_numbers_stay_numbers() {
        for attack in [
            "=cmd|' /C calc'!A0",
            "+1+1",
            "-2+3",
            "@SUM(A1)",
            "\t=1",
            "\r=1",
        ] {
            assert_eq!(neutralize(attack), format!("'{attack}"), "{attack:?}");
        }
        for safe in ["1.0.0", "", "esp32-001", "a=b", " =x"] {
            assert_eq!(neutralize(safe), safe);
        }
        let rows = vec![
            header_row(&["firmware", "counter", "ratio", "note"]),
            vec![
                Cell::from("=HYPERLINK(\"http://x\")"),
                Cell::from(-4i64),
                Cell::from(-0.5),
                Cell::from(None::<String>),
            ],
        ];
        let text = String::from_utf8(to_bytes(rows).unwrap()).unwrap();
        assert_eq!(
            text,
            "firmware,counter,ratio,note\n\"'=HYPERLINK(\"\"http://x\"\")\",-4,-0.5,\n"
        );
    }
}
