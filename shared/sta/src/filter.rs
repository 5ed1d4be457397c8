//! The `$filter` parser: a hand-written lexer and recursive-descent parser (OData 4 syntax as
//! SensorThings uses it) to an [`Expr`], with bounds checked before they can hurt: text length,
//! token count, and nesting — both the parser's own recursion (parentheses, `not`, calls) and
//! the depth of the resulting tree are at most [`MAX_DEPTH`], so neither the parser nor the
//! evaluator nor a backend's fold can exhaust the stack. Errors carry the character position
//! (1-based) in the option's value.
//!
//! Precedence, loosest first: `or`, `and`, `not`, comparisons (`eq ne gt ge lt le`, not
//! chained), `add sub`, `mul div mod`, unary `-`, then primaries (literals, `( … )`, calls,
//! property paths). `not` binding looser than comparisons lets both `not endswith(name,'x')` and
//! `not name eq 'x'` mean what they say.
//!
//! Literals: `'text'` (quote doubled inside), integers, decimals (`1.5`, `2e3`), `true`,
//! `false`, `null`, unquoted dates `2016-01-01`, instants `2016-01-01T01:01:01.000Z` (an offset
//! is required), intervals `start/end`, `duration'P1DT2H'`, `geography'POINT(8 54.1)'`.

use jiff::{Timestamp, civil};

use crate::ast::{ArithOp, CmpOp, Expr, Function, GeoLiteral, Literal};
use crate::entity::{EntityType, parse_instant};
use crate::error::{Result, StaError};

/// Deepest nesting of an expression (tree depth and parser recursion).
pub const MAX_DEPTH: usize = 32;
/// Most tokens in one expression.
pub const MAX_TOKENS: usize = 4_000;
/// Longest expression in characters.
pub const MAX_CHARS: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    Time(String),
    /// `geography'…'`, `geometry'…'`, `duration'…'`: the prefix (lowercased) and the text.
    Typed(String, String),
    LParen,
    RParen,
    Comma,
    Slash,
    Minus,
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// 1-based character position in the option value.
    pos: usize,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("`{s}`"),
        Tok::Str(s) => format!("the string '{s}'"),
        Tok::Num(s) | Tok::Time(s) => format!("`{s}`"),
        Tok::Typed(p, s) => format!("{p}'{s}'"),
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::Comma => "`,`".into(),
        Tok::Slash => "`/`".into(),
        Tok::Minus => "`-`".into(),
        Tok::Eof => "the end of the expression".into(),
    }
}

fn is_date_at(c: &[char], i: usize) -> bool {
    let d = |k: usize| c.get(i + k).is_some_and(char::is_ascii_digit);
    d(0) && d(1)
        && d(2)
        && d(3)
        && c.get(i + 4) == Some(&'-')
        && d(5)
        && d(6)
        && c.get(i + 7) == Some(&'-')
        && d(8)
        && d(9)
}

/// Reads a quoted string starting at `c[i] == '\''`; returns it and the index after it.
fn quoted(c: &[char], i: usize, option: &str, base: usize) -> Result<(String, usize)> {
    let mut s = String::new();
    let mut j = i + 1;
    loop {
        match c.get(j) {
            None => {
                return Err(StaError::query(
                    option,
                    base + i + 1,
                    "unterminated string: a quote opened here is never closed",
                ));
            }
            Some('\'') if c.get(j + 1) == Some(&'\'') => {
                s.push('\'');
                j += 2;
            }
            Some('\'') => return Ok((s, j + 1)),
            Some(ch) => {
                s.push(*ch);
                j += 1;
            }
        }
    }
}

fn lex(c: &[char], base: usize, option: &str) -> Result<Vec<Token>> {
    if c.len() > MAX_CHARS {
        return Err(StaError::too_large(format!("{option} length in characters"), c.len() as u64, MAX_CHARS as u64));
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        if out.len() >= MAX_TOKENS {
            return Err(StaError::too_large(format!("{option} tokens"), out.len() as u64 + 1, MAX_TOKENS as u64));
        }
        let ch = c[i];
        let pos = base + i + 1;
        let push = |out: &mut Vec<Token>, tok| out.push(Token { tok, pos });
        match ch {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                push(&mut out, Tok::LParen);
                i += 1;
            }
            ')' => {
                push(&mut out, Tok::RParen);
                i += 1;
            }
            ',' => {
                push(&mut out, Tok::Comma);
                i += 1;
            }
            '/' => {
                push(&mut out, Tok::Slash);
                i += 1;
            }
            '-' => {
                push(&mut out, Tok::Minus);
                i += 1;
            }
            '\'' => {
                let (s, j) = quoted(c, i, option, base)?;
                push(&mut out, Tok::Str(s));
                i = j;
            }
            '0'..='9' if is_date_at(c, i) => {
                let mut j = i;
                while j < c.len() && (c[j].is_ascii_digit() || "-:.TZtz+/".contains(c[j])) {
                    j += 1;
                }
                push(&mut out, Tok::Time(c[i..j].iter().collect()));
                i = j;
            }
            '0'..='9' | '.' => {
                let mut j = i;
                while j < c.len() && c[j].is_ascii_digit() {
                    j += 1;
                }
                if c.get(j) == Some(&'.') {
                    j += 1;
                    while j < c.len() && c[j].is_ascii_digit() {
                        j += 1;
                    }
                }
                if matches!(c.get(j), Some('e' | 'E')) {
                    let mut k = j + 1;
                    if matches!(c.get(k), Some('+' | '-')) {
                        k += 1;
                    }
                    if c.get(k).is_some_and(char::is_ascii_digit) {
                        while k < c.len() && c[k].is_ascii_digit() {
                            k += 1;
                        }
                        j = k;
                    }
                }
                if c.get(j).is_some_and(|x| x.is_alphanumeric() || *x == '_') {
                    return Err(StaError::query(option, base + j + 1, format!("unexpected `{}` after a number", c[j])));
                }
                let text: String = c[i..j].iter().collect();
                if text == "." {
                    return Err(StaError::query(option, pos, "unexpected `.`"));
                }
                push(&mut out, Tok::Num(text));
                i = j;
            }
            x if x.is_alphabetic() || x == '_' || x == '@' || x == '$' => {
                let mut j = i;
                while j < c.len() && (c[j].is_alphanumeric() || matches!(c[j], '_' | '.' | '@' | '$')) {
                    j += 1;
                }
                let word: String = c[i..j].iter().collect();
                let lower = word.to_ascii_lowercase();
                if c.get(j) == Some(&'\'') && matches!(lower.as_str(), "geography" | "geometry" | "duration") {
                    let (s, k) = quoted(c, j, option, base)?;
                    push(&mut out, Tok::Typed(lower, s));
                    i = k;
                } else {
                    push(&mut out, Tok::Ident(word));
                    i = j;
                }
            }
            other => return Err(StaError::query(option, pos, format!("unexpected character `{other}`"))),
        }
    }
    out.push(Token { tok: Tok::Eof, pos: base + c.len() + 1 });
    Ok(out)
}

const KEYWORDS: [&str; 17] = [
    "and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le", "add", "sub", "mul", "div", "mod", "true", "false", "null",
];

/// Parses a `$filter` value (percent-decoded). With `ty`, property paths are checked against the
/// entity type (navigation properties, then a property, then JSON members).
pub fn parse_filter(text: &str, ty: Option<EntityType>) -> Result<Expr> {
    let chars: Vec<char> = text.chars().collect();
    parse_chars(&chars, 0, "$filter", ty)
}

/// Parses an expression from `chars`, reporting positions offset by `base` under `option`.
pub(crate) fn parse_chars(chars: &[char], base: usize, option: &str, ty: Option<EntityType>) -> Result<Expr> {
    let toks = lex(chars, base, option)?;
    let mut p = Parser { toks: &toks, i: 0, nest: 0, ty, option };
    let (e, _) = p.or()?;
    let t = p.peek();
    if t.tok != Tok::Eof {
        return Err(p.err(t.pos, format!("unexpected {} after a complete expression", describe(&t.tok))));
    }
    Ok(e)
}

struct Parser<'t> {
    toks: &'t [Token],
    i: usize,
    nest: usize,
    ty: Option<EntityType>,
    option: &'t str,
}

type Parsed = Result<(Expr, usize)>;

impl Parser<'_> {
    fn peek(&self) -> Token {
        self.toks[self.i.min(self.toks.len() - 1)].clone()
    }

    fn bump(&mut self) -> Token {
        let t = self.peek();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn err(&self, pos: usize, msg: impl Into<String>) -> StaError {
        StaError::query(self.option, pos, msg)
    }

    fn peek_kw(&self, kws: &[&str]) -> Option<String> {
        match &self.peek().tok {
            Tok::Ident(w) if kws.contains(&w.as_str()) => Some(w.clone()),
            _ => None,
        }
    }

    fn depth(&self, d: usize, pos: usize) -> Result<usize> {
        if d > MAX_DEPTH {
            return Err(self.err(pos, format!("expression nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(d)
    }

    fn enter(&mut self, pos: usize) -> Result<()> {
        self.nest += 1;
        self.depth(self.nest, pos).map(|_| ())
    }

    fn or(&mut self) -> Parsed {
        self.nary("or", Self::and, Expr::Or)
    }

    fn and(&mut self) -> Parsed {
        self.nary("and", Self::not, Expr::And)
    }

    fn nary(&mut self, kw: &str, next: fn(&mut Self) -> Parsed, make: fn(Vec<Expr>) -> Expr) -> Parsed {
        let (first, mut d) = next(self)?;
        if self.peek_kw(&[kw]).is_none() {
            return Ok((first, d));
        }
        let pos = self.peek().pos;
        let mut items = vec![first];
        while self.peek_kw(&[kw]).is_some() {
            self.bump();
            let (e, d2) = next(self)?;
            items.push(e);
            d = d.max(d2);
        }
        Ok((make(items), self.depth(d + 1, pos)?))
    }

    fn not(&mut self) -> Parsed {
        if self.peek_kw(&["not"]).is_some() {
            let pos = self.bump().pos;
            self.enter(pos)?;
            let (e, d) = self.not()?;
            self.nest -= 1;
            return Ok((Expr::Not(Box::new(e)), self.depth(d + 1, pos)?));
        }
        self.cmp()
    }

    fn cmp(&mut self) -> Parsed {
        const OPS: [&str; 6] = ["eq", "ne", "gt", "ge", "lt", "le"];
        let (a, da) = self.add()?;
        let Some(kw) = self.peek_kw(&OPS) else {
            return Ok((a, da));
        };
        let pos = self.bump().pos;
        let op = match kw.as_str() {
            "eq" => CmpOp::Eq,
            "ne" => CmpOp::Ne,
            "gt" => CmpOp::Gt,
            "ge" => CmpOp::Ge,
            "lt" => CmpOp::Lt,
            _ => CmpOp::Le,
        };
        let (b, db) = self.add()?;
        if self.peek_kw(&OPS).is_some() {
            return Err(self.err(self.peek().pos, "comparisons do not chain: join them with `and`/`or`"));
        }
        Ok((Expr::Compare(op, Box::new(a), Box::new(b)), self.depth(da.max(db) + 1, pos)?))
    }

    fn arith_loop(&mut self, kws: &[&str], next: fn(&mut Self) -> Parsed) -> Parsed {
        let (mut a, mut d) = next(self)?;
        while let Some(kw) = self.peek_kw(kws) {
            let pos = self.bump().pos;
            let op = match kw.as_str() {
                "add" => ArithOp::Add,
                "sub" => ArithOp::Sub,
                "mul" => ArithOp::Mul,
                "div" => ArithOp::Div,
                _ => ArithOp::Mod,
            };
            let (b, db) = next(self)?;
            d = self.depth(d.max(db) + 1, pos)?;
            a = Expr::Arith(op, Box::new(a), Box::new(b));
        }
        Ok((a, d))
    }

    fn add(&mut self) -> Parsed {
        self.arith_loop(&["add", "sub"], Self::mul)
    }

    fn mul(&mut self) -> Parsed {
        self.arith_loop(&["mul", "div", "mod"], Self::unary)
    }

    fn unary(&mut self) -> Parsed {
        if self.peek().tok == Tok::Minus {
            let pos = self.bump().pos;
            if let Tok::Num(n) = self.peek().tok {
                self.bump();
                return Ok((Expr::Literal(self.number(&format!("-{n}"), pos)?), 1));
            }
            self.enter(pos)?;
            let (e, d) = self.unary()?;
            self.nest -= 1;
            return Ok((Expr::Neg(Box::new(e)), self.depth(d + 1, pos)?));
        }
        self.primary()
    }

    fn number(&self, text: &str, pos: usize) -> Result<Literal> {
        if !text.contains(['.', 'e', 'E'])
            && let Ok(i) = text.parse::<i64>()
        {
            return Ok(Literal::Int(i));
        }
        match text.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Literal::Float(x)),
            _ => Err(self.err(pos, format!("number `{text}` is out of range"))),
        }
    }

    fn time(&self, text: &str, pos: usize) -> Result<Literal> {
        let bad = |m: String| self.err(pos, m);
        if let Some((a, b)) = text.split_once('/') {
            let (a, b) = (parse_instant(a).map_err(bad)?, parse_instant(b).map_err(bad)?);
            if a > b {
                return Err(self.err(pos, format!("interval `{text}` ends before it starts")));
            }
            return Ok(Literal::Interval(a, b));
        }
        if text.contains(['T', 't']) {
            return parse_instant(text).map(Literal::DateTime).map_err(bad);
        }
        text.parse::<civil::Date>()
            .map(Literal::Date)
            .map_err(|_| self.err(pos, format!("`{text}` is not a date (YYYY-MM-DD)")))
    }

    fn typed(&self, prefix: &str, text: &str, pos: usize) -> Result<Literal> {
        if prefix == "duration" {
            let span: jiff::Span =
                text.parse().map_err(|e| self.err(pos, format!("`{text}` is not an ISO 8601 duration: {e}")))?;
            let d = span.to_duration(jiff::SpanRelativeTo::days_are_24_hours()).map_err(|e| {
                self.err(pos, format!("duration `{text}`: {e} (years and months have no fixed length)"))
            })?;
            return Ok(Literal::Duration(d));
        }
        let geometry = crate::geometry::from_wkt(text).map_err(|e| self.err(pos, format!("{prefix} literal: {e}")))?;
        Ok(Literal::Geometry(GeoLiteral { wkt: text.to_owned(), geometry }))
    }

    fn primary(&mut self) -> Parsed {
        let t = self.bump();
        let pos = t.pos;
        match t.tok {
            Tok::LParen => {
                self.enter(pos)?;
                let (e, d) = self.or()?;
                let close = self.bump();
                if close.tok != Tok::RParen {
                    return Err(self.err(
                        close.pos,
                        format!("expected `)` to close the `(` at character {pos}, found {}", describe(&close.tok)),
                    ));
                }
                self.nest -= 1;
                Ok((e, d))
            }
            Tok::Str(s) => Ok((Expr::Literal(Literal::String(s)), 1)),
            Tok::Num(n) => Ok((Expr::Literal(self.number(&n, pos)?), 1)),
            Tok::Time(s) => Ok((Expr::Literal(self.time(&s, pos)?), 1)),
            Tok::Typed(p, s) => Ok((Expr::Literal(self.typed(&p, &s, pos)?), 1)),
            Tok::Ident(w) => match w.as_str() {
                "true" => Ok((Expr::Literal(Literal::Bool(true)), 1)),
                "false" => Ok((Expr::Literal(Literal::Bool(false)), 1)),
                "null" => Ok((Expr::Literal(Literal::Null), 1)),
                kw if KEYWORDS.contains(&kw) => {
                    Err(self.err(pos, format!("expected a value, found the operator `{kw}`")))
                }
                _ if self.peek().tok == Tok::LParen => self.call(&w, pos),
                _ => self.path(w, pos),
            },
            other => Err(self.err(pos, format!("expected a value, found {}", describe(&other)))),
        }
    }

    fn call(&mut self, name: &str, pos: usize) -> Parsed {
        let Some(func) = Function::from_name(name) else {
            let names: Vec<&str> = Function::ALL.iter().map(|f| f.name()).collect();
            return Err(self.err(pos, format!("unknown function `{name}`; functions are {}", names.join(", "))));
        };
        self.bump(); // (
        self.enter(pos)?;
        let mut args = Vec::new();
        let mut d = 0;
        if self.peek().tok == Tok::RParen {
            self.bump();
        } else {
            loop {
                let (e, de) = self.or()?;
                args.push(e);
                d = d.max(de);
                let t = self.bump();
                match t.tok {
                    Tok::Comma => {}
                    Tok::RParen => break,
                    other => {
                        return Err(self.err(
                            t.pos,
                            format!("expected `,` or `)` in the arguments of {name}, found {}", describe(&other)),
                        ));
                    }
                }
            }
        }
        self.nest -= 1;
        let (min, max) = func.arity();
        if args.len() < min || args.len() > max {
            let want = if min == max { min.to_string() } else { format!("{min} to {max}") };
            return Err(self.err(pos, format!("{} takes {want} argument(s), got {}", func.name(), args.len())));
        }
        Ok((Expr::Call(func, args), self.depth(d + 1, pos)?))
    }

    fn path(&mut self, first: String, pos: usize) -> Parsed {
        let mut segs = vec![first];
        while self.peek().tok == Tok::Slash {
            self.bump();
            let t = self.bump();
            match t.tok {
                Tok::Ident(w) if !KEYWORDS.contains(&w.as_str()) => segs.push(w),
                other => {
                    return Err(
                        self.err(t.pos, format!("expected a property name after `/`, found {}", describe(&other)))
                    );
                }
            }
        }
        for s in &mut segs {
            if s == "@iot.id" {
                *s = "id".into();
            }
        }
        if let Some(ty) = self.ty {
            check_path(ty, &segs).map_err(|m| self.err(pos, m))?;
        }
        Ok((Expr::Property(segs), 1))
    }
}

/// Checks a property path against an entity type: navigation properties, then one property,
/// then (only in JSON properties) members.
pub fn check_path(ty: EntityType, segs: &[String]) -> std::result::Result<(), String> {
    let mut t = ty;
    for (i, s) in segs.iter().enumerate() {
        if let Some(n) = t.navigation(s) {
            t = n.target;
            continue;
        }
        if let Some(p) = t.property(s) {
            if i + 1 < segs.len() && !t.is_json_property(p) {
                return Err(format!("`{p}` of {t} has no members"));
            }
            return Ok(());
        }
        let mut names: Vec<&str> = t.properties().to_vec();
        names.extend(t.navigations().iter().map(|n| n.name));
        return Err(format!("{t} has no property or navigation `{s}`; it has {}", names.join(", ")));
    }
    Err(format!(
        "`{}` is a {t}, not a value: name one of its properties (e.g. `{}/id`)",
        segs.join("/"),
        segs.join("/")
    ))
}

/// Parses one instant literal as the filter does (used by tests and callers building filters).
pub fn instant(text: &str) -> std::result::Result<Timestamp, String> {
    parse_instant(text)
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;
