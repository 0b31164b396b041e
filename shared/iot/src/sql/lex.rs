//! Tokens of the subset: words, quoted strings, numbers, punctuation and operators.

use super::SqlError;

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// An identifier or keyword, as written.
    Word(String),
    Str(String),
    Num(serde_json::Number),
    Star,
    Comma,
    Dot,
    LParen,
    RParen,
    Op(&'static str),
}

/// Each token with its 1-based character position.
pub fn lex(sql: &str) -> Result<Vec<(usize, Tok)>, SqlError> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |pos: usize, msg: String| SqlError { pos: pos + 1, msg };
    while let Some(&c) = chars.get(i) {
        let start = i;
        let tok = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '*' => Tok::Star,
            ',' => Tok::Comma,
            '.' => Tok::Dot,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '=' => Tok::Op("="),
            '<' | '>' | '!' => {
                let next = chars.get(i + 1).copied();
                let op = match (c, next) {
                    ('<', Some('=')) => "<=",
                    ('<', Some('>')) => "<>",
                    ('>', Some('=')) => ">=",
                    ('!', Some('=')) => "!=",
                    ('<', _) => "<",
                    ('>', _) => ">",
                    _ => return Err(err(i, "'!' is only supported in '!='".into())),
                };
                i += op.len();
                out.push((start + 1, Tok::Op(op)));
                continue;
            }
            '"' | '`' => {
                return Err(err(
                    i,
                    "quoted names are not supported; strings use single quotes".into(),
                ));
            }
            '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(err(start, "unterminated string".into())),
                        // A doubled quote inside a string is one quote character.
                        Some(&q) if q == c && chars.get(i + 1) == Some(&c) => {
                            s.push(c);
                            i += 2;
                        }
                        Some(&q) if q == c => break,
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                i += 1;
                out.push((start + 1, Tok::Str(s)));
                continue;
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                i += 1;
                while chars
                    .get(i)
                    .is_some_and(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E'))
                {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let num = text
                    .parse::<i64>()
                    .map(serde_json::Number::from)
                    .ok()
                    .or_else(|| {
                        text.parse::<f64>()
                            .ok()
                            .and_then(serde_json::Number::from_f64)
                    })
                    .ok_or_else(|| err(start, format!("{text:?} is not a number")))?;
                out.push((start + 1, Tok::Num(num)));
                continue;
            }
            c if c.is_alphabetic() || c == '_' => {
                while chars
                    .get(i)
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_')
                {
                    i += 1;
                }
                out.push((start + 1, Tok::Word(chars[start..i].iter().collect())));
                continue;
            }
            c => return Err(err(i, format!("{c:?} is not supported"))),
        };
        i += 1;
        out.push((start + 1, tok));
    }
    Ok(out)
}
