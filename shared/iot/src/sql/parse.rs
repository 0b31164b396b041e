//! Recursive descent over the tokens:
//!
//! ```text
//! rule   := SELECT item (',' item)* FROM string [WHERE expr]
//! item   := '*' | expr [AS word]
//! expr   := and (OR and)*
//! and    := not (AND not)*
//! not    := NOT not | cmp
//! cmp    := atom [op atom]
//! atom   := string | number | TRUE | FALSE | NULL | func '(' [number] ')' | word ('.' word)* | '(' expr ')'
//! ```

use super::lex::{Tok, lex};
use super::{Cmp, Expr, Item, Rule, SqlError};

/// Words that cannot name a field (AWS reserves many more; these are the ones that would make
/// this grammar ambiguous, plus the common clauses it does not support).
const RESERVED: &[&str] = &[
    "select", "from", "where", "as", "and", "or", "not", "true", "false", "null", "case", "when",
    "then", "else", "end", "in", "is", "like", "between", "order", "group", "by", "limit",
    "having", "join", "union",
];

struct Parser {
    toks: Vec<(usize, Tok)>,
    at: usize,
    /// Position just past the statement, for errors at its end.
    end: usize,
}

pub fn parse(sql: &str) -> Result<Rule, SqlError> {
    let mut p = Parser {
        toks: lex(sql)?,
        at: 0,
        end: sql.chars().count() + 1,
    };
    p.keyword("SELECT")?;
    let mut select = vec![p.item()?];
    while p.eat(&Tok::Comma) {
        select.push(p.item()?);
    }
    p.keyword("FROM")?;
    let from = match p.next() {
        Some((_, Tok::Str(s))) => s,
        _ => return Err(p.error_before("FROM takes a quoted topic filter, e.g. 'a/+/b'")),
    };
    crate::topic::valid_filter(&from).map_err(|msg| p.error_before(&msg))?;
    let filter = if p.peek_word("WHERE") {
        p.at += 1;
        Some(p.expr()?)
    } else {
        None
    };
    if p.peek().is_some() {
        return Err(p.error("unsupported SQL after the statement"));
    }
    Ok(Rule {
        select,
        from,
        filter,
    })
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(_, t)| t)
    }

    fn next(&mut self) -> Option<(usize, Tok)> {
        let t = self.toks.get(self.at).cloned();
        self.at += usize::from(t.is_some());
        t
    }

    fn pos(&self) -> usize {
        self.toks.get(self.at).map_or(self.end, |(p, _)| *p)
    }

    fn error(&self, msg: &str) -> SqlError {
        let found = match self.peek() {
            Some(t) => format!(" (found {})", describe(t)),
            None => " (at the end)".into(),
        };
        SqlError {
            pos: self.pos(),
            msg: format!("{msg}{found}"),
        }
    }

    /// An error about the token just consumed.
    fn error_before(&self, msg: &str) -> SqlError {
        let pos = self.at.checked_sub(1).and_then(|i| self.toks.get(i));
        SqlError {
            pos: pos.map_or(self.end, |(p, _)| *p),
            msg: msg.into(),
        }
    }

    fn eat(&mut self, t: &Tok) -> bool {
        let hit = self.peek() == Some(t);
        self.at += usize::from(hit);
        hit
    }

    fn peek_word(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn keyword(&mut self, kw: &str) -> Result<(), SqlError> {
        if self.peek_word(kw) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected {kw}")))
        }
    }

    fn item(&mut self) -> Result<Item, SqlError> {
        if self.eat(&Tok::Star) {
            return Ok(Item::All);
        }
        let expr = self.expr()?;
        let alias = if self.peek_word("AS") {
            self.at += 1;
            match self.next() {
                Some((_, Tok::Word(w))) if !reserved(&w) => Some(w),
                _ => return Err(self.error_before("AS takes a name")),
            }
        } else {
            None
        };
        Ok(Item::Expr { expr, alias })
    }

    fn expr(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.and()?;
        while self.peek_word("OR") {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.not()?;
        while self.peek_word("AND") {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, SqlError> {
        if self.peek_word("NOT") {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.cmp()
    }

    fn cmp(&mut self) -> Result<Expr, SqlError> {
        let left = self.atom()?;
        let op = match self.peek() {
            Some(Tok::Op(op)) => match *op {
                "=" => Cmp::Eq,
                "<>" | "!=" => Cmp::Ne,
                "<" => Cmp::Lt,
                "<=" => Cmp::Le,
                ">" => Cmp::Gt,
                ">=" => Cmp::Ge,
                _ => return Err(self.error("unsupported operator")),
            },
            _ => return Ok(left),
        };
        self.at += 1;
        let right = self.atom()?;
        if matches!(self.peek(), Some(Tok::Op(_))) {
            return Err(self.error("chained comparisons need parentheses"));
        }
        Ok(Expr::Cmp(op, Box::new(left), Box::new(right)))
    }

    fn atom(&mut self) -> Result<Expr, SqlError> {
        let Some((pos, tok)) = self.next() else {
            return Err(self.error("expected a value"));
        };
        match tok {
            Tok::Str(s) => Ok(Expr::Lit(s.into())),
            Tok::Num(n) => Ok(Expr::Lit(n.into())),
            Tok::LParen => {
                let e = self.expr()?;
                if !self.eat(&Tok::RParen) {
                    return Err(self.error("expected ')'"));
                }
                Ok(e)
            }
            Tok::Word(w) if self.peek() == Some(&Tok::LParen) => self.call(pos, &w),
            Tok::Word(w) => match w.to_ascii_lowercase().as_str() {
                "true" => Ok(Expr::Lit(true.into())),
                "false" => Ok(Expr::Lit(false.into())),
                "null" => Ok(Expr::Lit(serde_json::Value::Null)),
                lw if reserved(lw) => Err(SqlError {
                    pos,
                    msg: format!("{w} is not supported here"),
                }),
                _ => {
                    let mut path = vec![w];
                    while self.eat(&Tok::Dot) {
                        match self.next() {
                            Some((_, Tok::Word(w))) if !reserved(&w) => path.push(w),
                            _ => return Err(self.error_before("expected a field name after '.'")),
                        }
                    }
                    Ok(Expr::Field(path))
                }
            },
            t => Err(SqlError {
                pos,
                msg: format!("expected a value (found {})", describe(&t)),
            }),
        }
    }

    /// `topic()`, `topic(n)`, `timestamp()`, `clientid()`; other functions are refused.
    fn call(&mut self, pos: usize, name: &str) -> Result<Expr, SqlError> {
        let lower = name.to_ascii_lowercase();
        if !matches!(lower.as_str(), "topic" | "timestamp" | "clientid") {
            return Err(SqlError {
                pos,
                msg: format!("function {name}() is not supported (topic, timestamp, clientid are)"),
            });
        }
        self.at += 1; // '('
        let arg = match self.peek() {
            Some(Tok::Num(n)) if lower == "topic" => {
                let n = n
                    .as_u64()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| self.error("the argument must be a positive whole number"))?;
                self.at += 1;
                Some(usize::try_from(n).unwrap_or(usize::MAX))
            }
            _ => None,
        };
        if !self.eat(&Tok::RParen) {
            let msg = match lower.as_str() {
                "topic" => "topic() takes nothing or a level number".to_owned(),
                _ => format!("{name}() takes no argument"),
            };
            return Err(self.error(&msg));
        }
        Ok(match lower.as_str() {
            "topic" => Expr::Topic(arg),
            "timestamp" => Expr::Timestamp,
            _ => Expr::ClientId,
        })
    }
}

fn reserved(word: &str) -> bool {
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word))
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Word(w) => w.clone(),
        Tok::Str(s) => format!("'{s}'"),
        Tok::Num(n) => n.to_string(),
        Tok::Star => "'*'".into(),
        Tok::Comma => "','".into(),
        Tok::Dot => "'.'".into(),
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::Op(op) => format!("'{op}'"),
    }
}
