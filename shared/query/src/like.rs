//! CQL2 `LIKE` patterns: `%` matches any run of characters, `_` exactly one character, `\`
//! escapes the next character. Matching is by Unicode character, never by byte, so `_` matches
//! one 汉字.
//!
//! In SQL the pattern becomes a `GLOB` pattern rather than a `LIKE` one: `GLOB` is case-sensitive
//! whatever the connection's `case_sensitive_like` setting, and it also matches by character, so
//! the SQL and the Rust matcher agree without depending on connection state. PostgreSQL's `LIKE`
//! is case-sensitive and matches by character already; there the pattern keeps `%`/`_` and
//! escapes literal `%`, `_`, `\` with `\`.

use std::fmt;

use crate::error::QueryError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    /// `%`
    Any,
    /// `_`
    One,
    Char(char),
}

/// A parsed LIKE pattern.
#[derive(Debug, Clone)]
pub struct LikePattern {
    source: String,
    toks: Vec<Tok>,
}

impl PartialEq for LikePattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl LikePattern {
    /// Parses a pattern in CQL2 syntax.
    pub fn new(pattern: &str) -> Result<Self, QueryError> {
        let mut toks = Vec::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            toks.push(match c {
                '%' => Tok::Any,
                '_' => Tok::One,
                '\\' => match chars.next() {
                    Some(e) => Tok::Char(e),
                    None => {
                        return Err(QueryError::literal(
                            "LIKE pattern",
                            pattern,
                            "ends with the escape character \\ (write \\\\ for a backslash)",
                        ));
                    }
                },
                c => Tok::Char(c),
            });
        }
        Ok(Self { source: pattern.to_owned(), toks })
    }

    /// The pattern as written (after `casei` folding).
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The same pattern with ASCII letters lowered (`casei` applied to the pattern literal).
    pub(crate) fn ascii_lowercase(&self) -> Self {
        let toks = self
            .toks
            .iter()
            .map(|t| match t {
                Tok::Char(c) => Tok::Char(c.to_ascii_lowercase()),
                other => *other,
            })
            .collect();
        Self { source: self.source.to_ascii_lowercase(), toks }
    }

    /// Whether `s` matches the whole pattern.
    pub fn matches(&self, s: &str) -> bool {
        let s: Vec<char> = s.chars().collect();
        let p = &self.toks;
        let (mut pi, mut si) = (0, 0);
        // The last `%` seen and the text position it currently absorbs up to; on a mismatch the
        // `%` absorbs one more character and matching resumes after it.
        let mut star: Option<(usize, usize)> = None;
        while si < s.len() {
            match p.get(pi) {
                Some(Tok::Any) => {
                    star = Some((pi, si));
                    pi += 1;
                    continue;
                }
                Some(Tok::One) => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                Some(Tok::Char(c)) if *c == s[si] => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                _ => {}
            }
            match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            }
        }
        p[pi..].iter().all(|t| *t == Tok::Any)
    }

    /// The equivalent PostgreSQL `LIKE` pattern with the default escape character `\`:
    /// literal `%`, `_` and `\` escaped. PostgreSQL's `LIKE` is case-sensitive and matches by
    /// character under a deterministic collation, like [`LikePattern::matches`].
    pub(crate) fn to_pg_like(&self) -> String {
        let mut out = String::with_capacity(self.source.len() + 4);
        for t in &self.toks {
            match t {
                Tok::Any => out.push('%'),
                Tok::One => out.push('_'),
                Tok::Char(c @ ('%' | '_' | '\\')) => {
                    out.push('\\');
                    out.push(*c);
                }
                Tok::Char(c) => out.push(*c),
            }
        }
        out
    }

    /// The equivalent SQLite `GLOB` pattern.
    pub(crate) fn to_glob(&self) -> String {
        let mut out = String::with_capacity(self.source.len() + 4);
        for t in &self.toks {
            match t {
                Tok::Any => out.push('*'),
                Tok::One => out.push('?'),
                Tok::Char('*') => out.push_str("[*]"),
                Tok::Char('?') => out.push_str("[?]"),
                Tok::Char('[') => out.push_str("[[]"),
                Tok::Char(c) => out.push(*c),
            }
        }
        out
    }
}

impl fmt::Display for LikePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(pattern: &str, text: &str, expected: bool) {
        assert_eq!(LikePattern::new(pattern).unwrap().matches(text), expected, "{text} LIKE {pattern}");
    }

    #[test]
    fn matching() {
        check("井盖", "井盖", true);
        check("井%", "井盖", true);
        check("井%", "阀门井", false);
        check("%井", "阀门井", true);
        check("%门%", "阀门井", true);
        check("_盖", "井盖", true);
        check("_盖", "雨水井盖", false);
        check("__井盖", "雨水井盖", true);
        check("%", "", true);
        check("_", "", false);
        check("", "", true);
        check("a%b%c", "aXbYbZc", true);
        check("a%b%c", "aXbYbZ", false);
        check("100\\%", "100%", true);
        check("100\\%", "1000", false);
        check("a\\_b", "a_b", true);
        check("a\\_b", "axb", false);
        check("a\\\\b", "a\\b", true);
        check("Abc", "abc", false);
        check("%%%x", "yyx", true);
    }

    #[test]
    fn glob_translation_escapes_glob_metacharacters() {
        let g = |p: &str| LikePattern::new(p).unwrap().to_glob();
        assert_eq!(g("井%_"), "井*?");
        assert_eq!(g("a*b?c[d]"), "a[*]b[?]c[[]d]");
        assert_eq!(g("50\\%"), "50%");
        assert!(LikePattern::new("abc\\").unwrap_err().to_string().contains("ends with the escape character"));
        assert_eq!(LikePattern::new("AbC%").unwrap().ascii_lowercase().to_glob(), "abc*");
    }
}
