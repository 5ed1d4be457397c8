//! Percent-encoding of URL parts, the one implementation both ends use: the device building
//! query strings, the server writing `next` links and header values, the QR-code links of
//! [`crate::enrolment`]. Encoding keeps only the RFC 3986 unreserved characters, so an encoded
//! value is safe in any component (path segment, query value, header); decoding is strict, so a
//! malformed value is refused with the reason instead of being passed on half-decoded.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Everything but the RFC 3986 unreserved characters `A–Z a–z 0–9 - . _ ~`.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encodes UTF-8 text for any URL component (query value, path segment) or header value.
pub fn encode_component(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// Decodes a percent-encoded component (`+` stays a plus). Every `%` must be followed by two hex
/// digits and the bytes must be UTF-8.
pub fn decode_component(s: &str) -> Result<String, DecodeError> {
    check_escapes(s)?;
    percent_decode_str(s).decode_utf8().map(|c| c.into_owned()).map_err(|e| DecodeError::NotUtf8(e.to_string()))
}

/// Decodes one `application/x-www-form-urlencoded` value or name: like [`decode_component`], and
/// `+` is a space.
pub fn decode_form_value(s: &str) -> Result<String, DecodeError> {
    decode_component(&s.replace('+', " "))
}

fn check_escapes(s: &str) -> Result<(), DecodeError> {
    let bytes = s.as_bytes();
    for (i, _) in s.match_indices('%') {
        match bytes.get(i + 1..i + 3) {
            Some([h, l]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {}
            Some(_) => return Err(DecodeError::BadEscape { at: i }),
            None => return Err(DecodeError::ShortEscape { at: i }),
        }
    }
    Ok(())
}

/// Why a percent-encoded text could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// A `%` too close to the end for two hex digits (byte offset).
    ShortEscape { at: usize },
    /// A `%` not followed by two hex digits (byte offset).
    BadEscape { at: usize },
    /// The decoded bytes are not UTF-8.
    NotUtf8(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::ShortEscape { at } => write!(f, "`%` at byte {at} needs two hex digits"),
            DecodeError::BadEscape { at } => write!(f, "`%` at byte {at} is not followed by two hex digits"),
            DecodeError::NotUtf8(e) => write!(f, "the bytes are not UTF-8 ({e})"),
        }
    }
}

impl std::error::Error for DecodeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_all_but_unreserved() {
        for (text, encoded) in [
            ("abc-XYZ_0.9~", "abc-XYZ_0.9~"),
            ("a b+c/d=e&f%g", "a%20b%2Bc%2Fd%3De%26f%25g"),
            ("http://10.0.0.5:8080", "http%3A%2F%2F10.0.0.5%3A8080"),
            ("114.2,30.4", "114.2%2C30.4"),
            ("张三", "%E5%BC%A0%E4%B8%89"),
            ("2025年版 (民政部)", "2025%E5%B9%B4%E7%89%88%20%28%E6%B0%91%E6%94%BF%E9%83%A8%29"),
        ] {
            assert_eq!(encode_component(text), encoded);
            assert_eq!(decode_component(encoded).unwrap(), text);
        }
    }

    #[test]
    fn decoding_is_strict_and_form_values_take_plus_as_space() {
        assert_eq!(decode_component("a+b%e5%bc%a0").unwrap(), "a+b张");
        assert_eq!(decode_form_value("a+b%2B").unwrap(), "a b+");
        assert_eq!(decode_component("no escapes, 原样").unwrap(), "no escapes, 原样");
        assert_eq!(decode_component("%zz"), Err(DecodeError::BadEscape { at: 0 }));
        assert_eq!(decode_component("abc%4"), Err(DecodeError::ShortEscape { at: 3 }));
        assert!(matches!(decode_component("%E5%BC"), Err(DecodeError::NotUtf8(_))));
        assert!(matches!(decode_component("%C0%AF"), Err(DecodeError::NotUtf8(_))));
        assert_eq!(decode_component("%zz").unwrap_err().to_string(), "`%` at byte 0 is not followed by two hex digits");
    }
}
