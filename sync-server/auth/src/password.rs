//! Username and password rules, and password hashing.
//!
//! Hashes are Argon2id PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`), made by the
//! RustCrypto `argon2` crate with a fresh 16-byte random salt each. The default cost is the crate's
//! default and OWASP's recommended minimum for Argon2id: 19 MiB of memory, 2 passes, 1 lane
//! ([`PasswordCost::DEFAULT`]). A hash records its own cost, so raising the cost later only
//! affects new hashes and old ones still verify.
//!
//! Lengths are counted in characters, not bytes: `张三` is 2 characters long.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::{AuthError, Result};

/// Longest accepted password, in characters: long passphrases are welcome, megabyte bodies
/// (a cheap way to make the server hash a lot) are not.
pub const MAX_PASSWORD_CHARS: usize = 256;
pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_USERNAME_CHARS: usize = 64;

/// Argon2id cost parameters for new hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl PasswordCost {
    /// Production: 19 MiB, 2 passes, 1 lane (argon2 crate default; OWASP minimum for Argon2id).
    pub const DEFAULT: PasswordCost = PasswordCost {
        memory_kib: Params::DEFAULT_M_COST,
        iterations: Params::DEFAULT_T_COST,
        parallelism: Params::DEFAULT_P_COST,
    };

    /// The smallest cost Argon2 accepts. Only for tests, where hundreds of hashes are made.
    pub const INSECURE_FAST: PasswordCost =
        PasswordCost { memory_kib: Params::MIN_M_COST, iterations: 1, parallelism: 1 };

    fn hasher(self) -> Result<Argon2<'static>> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| AuthError::Hash(format!("invalid Argon2 cost {self:?}: {e}")))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// A username: 1–64 characters, no whitespace or control characters. Chinese is welcome (`张三`).
pub fn validate_username(username: &str) -> Result<()> {
    let bad = |reason: String| AuthError::InvalidUsername { username: username.into(), reason };
    let n = username.chars().count();
    if n == 0 {
        return Err(bad("must not be empty".into()));
    }
    if n > MAX_USERNAME_CHARS {
        return Err(bad(format!("{n} characters; at most {MAX_USERNAME_CHARS} allowed")));
    }
    if let Some((i, c)) = username.chars().enumerate().find(|(_, c)| c.is_whitespace() || c.is_control()) {
        let what = if c.is_whitespace() { "whitespace" } else { "a control character" };
        return Err(bad(format!("character {} is {what} (U+{:04X}); none allowed", i + 1, u32::from(c))));
    }
    Ok(())
}

/// A password: 8–256 characters and not the username (compared ignoring case).
pub fn validate_password(username: &str, password: &str) -> Result<()> {
    let bad = |reason: String| AuthError::InvalidPassword { reason };
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(bad(format!("{n} characters; at least {MIN_PASSWORD_CHARS} required")));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(bad(format!("{n} characters; at most {MAX_PASSWORD_CHARS} allowed")));
    }
    if password.to_lowercase() == username.to_lowercase() {
        return Err(bad("must not be the same as the username".into()));
    }
    Ok(())
}

/// A short label (group, device name, platform): 1–`max` characters, no control characters,
/// not blank. Inner spaces are fine (`张三的 手机`).
pub(crate) fn validate_label(what: &'static str, value: &str, max: usize) -> Result<()> {
    let bad = |reason: String| AuthError::InvalidName { what, value: value.into(), reason };
    let n = value.chars().count();
    if value.trim().is_empty() {
        return Err(bad("must not be empty".into()));
    }
    if n > max {
        return Err(bad(format!("{n} characters; at most {max} allowed")));
    }
    if value.trim() != value {
        return Err(bad("must not start or end with whitespace".into()));
    }
    if let Some((i, c)) = value.chars().enumerate().find(|(_, c)| c.is_control()) {
        return Err(bad(format!("character {} is a control character (U+{:04X})", i + 1, u32::from(c))));
    }
    Ok(())
}

/// Hashes a password with a fresh random salt.
pub fn hash_password(password: &str, cost: PasswordCost) -> Result<String> {
    let hash = cost.hasher()?.hash_password(password.as_bytes()).map_err(|e| AuthError::Hash(e.to_string()))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `hash` (with the cost recorded in the hash).
/// A malformed hash is an error, not a mismatch: it means the database is damaged.
pub fn verify_password(password: &str, hash: &str) -> Result<bool> {
    match Argon2::default().verify_password(password.as_bytes(), hash) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(e) => Err(AuthError::Corrupt(format!("stored password hash is unusable: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn username(input: &str, expected: Result<(), &str>) {
        let got = validate_username(input).map_err(|e| e.to_string());
        assert_eq!(got.as_ref().copied().map_err(String::as_str), expected, "username {input:?}");
    }

    fn password(user: &str, input: &str, expected: Result<(), &str>) {
        let got = validate_password(user, input).map_err(|e| e.to_string());
        assert_eq!(got.as_ref().copied().map_err(String::as_str), expected, "password {input:?}");
    }

    #[test]
    fn username_rules() {
        username("admin", Ok(()));
        username("张三", Ok(()));
        username("li.si-2024_外业", Ok(()));
        username("a", Ok(()));
        username(&"长".repeat(64), Ok(()));
        username("", Err("invalid username ``: must not be empty"));
        username(
            &"长".repeat(65),
            Err(&format!("invalid username `{}`: 65 characters; at most 64 allowed", "长".repeat(65))),
        );
        username("张 三", Err("invalid username `张 三`: character 2 is whitespace (U+0020); none allowed"));
        username(
            "张\u{3000}三",
            Err("invalid username `张\u{3000}三`: character 2 is whitespace (U+3000); none allowed"),
        );
        username(" admin", Err("invalid username ` admin`: character 1 is whitespace (U+0020); none allowed"));
        username(
            "ad\u{7}min",
            Err("invalid username `ad\u{7}min`: character 3 is a control character (U+0007); none allowed"),
        );
    }

    #[test]
    fn password_rules() {
        password("张三", "correct horse", Ok(()));
        password("张三", "密码密码密码密码", Ok(()));
        // 7 Chinese characters are 21 bytes but only 7 characters.
        password("张三", "密码密码密码密", Err("invalid password: 7 characters; at least 8 required"));
        password("张三", "short", Err("invalid password: 5 characters; at least 8 required"));
        password("张三", "", Err("invalid password: 0 characters; at least 8 required"));
        password("inspector1", "inspector1", Err("invalid password: must not be the same as the username"));
        password("Inspector1", "INSPECTOR1", Err("invalid password: must not be the same as the username"));
        password("u", &"x".repeat(256), Ok(()));
        password("u", &"x".repeat(257), Err("invalid password: 257 characters; at most 256 allowed"));
    }

    #[test]
    fn label_rules() {
        assert!(validate_label("group", "排水 巡查队", 64).is_ok());
        let e = validate_label("group", " x", 64).unwrap_err().to_string();
        assert_eq!(e, "invalid group ` x`: must not start or end with whitespace");
        let e = validate_label("device name", "  ", 64).unwrap_err().to_string();
        assert_eq!(e, "invalid device name `  `: must not be empty");
        let e = validate_label("platform", "abcd", 3).unwrap_err().to_string();
        assert_eq!(e, "invalid platform `abcd`: 4 characters; at most 3 allowed");
    }

    #[test]
    fn hashes_verify_only_their_password() {
        let h = hash_password("密码是正确的", PasswordCost::INSECURE_FAST).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{h}");
        assert!(verify_password("密码是正确的", &h).unwrap());
        assert!(!verify_password("密码是错误的", &h).unwrap());
        // A fresh salt each time.
        assert_ne!(h, hash_password("密码是正确的", PasswordCost::INSECURE_FAST).unwrap());
        assert!(matches!(verify_password("x", "not a hash"), Err(AuthError::Corrupt(_))));
    }

    #[test]
    fn default_cost_is_the_documented_one() {
        let h = hash_password("correct horse", PasswordCost::DEFAULT).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse", &h).unwrap());
    }
}
