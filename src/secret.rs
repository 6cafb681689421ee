//! Secrets (Odoo API key, marketplace tokens, webhook secrets): where they come from and how they
//! stay out of every log line, sync-log row, CLI table and error message.
//!
//! A secret is configured one of three ways, named after its key: `token = "…"` inline,
//! `token_file = "/run/credentials/marketsync.service/token"` (systemd `LoadCredential=`), or
//! `token_env = "CARTONA_TOKEN"`. Every resolved secret is also registered so [`scrub`] can
//! blank it out of text that came from elsewhere (an upstream error body echoing our token, say).

use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use std::path::PathBuf;
use std::sync::RwLock;

/// A resolved secret. `Debug` and `Display` print `[redacted]`; only [`Secret::expose`] reveals it.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        let value: String = value.into();
        register(&value);
        Secret(SecretString::from(value))
    }

    /// The value, for the one place that must send it (an HTTP header, an RPC argument).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The three ways one secret may be configured, as read from TOML.
#[derive(Debug, Default, Clone)]
pub struct SecretSpec {
    pub inline: Option<String>,
    pub file: Option<PathBuf>,
    pub env: Option<String>,
}

/// Why a secret could not be resolved; it names the config key and never holds the secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{key}: set only one of `{key}`, `{key}_file` and `{key}_env`")]
    Ambiguous { key: String },
    #[error("{key}_file: cannot read {}: {source}", path.display())]
    Unreadable {
        key: String,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{key}_env: the environment variable {var} is not set")]
    Unset { key: String, var: String },
    #[error("{key}: missing; set `{key}`, `{key}_file` (a file holding it) or `{key}_env` (an environment variable)")]
    Missing { key: String },
    #[error("{key}: is empty")]
    Empty { key: String },
}

impl SecretSpec {
    pub fn is_set(&self) -> bool {
        self.inline.is_some() || self.file.is_some() || self.env.is_some()
    }

    /// Resolves the secret. `key` is the config path of the plain key (e.g. `odoo.api_key`), used
    /// to name the problem; the error never contains the secret itself.
    pub fn resolve(&self, key: &str) -> Result<Secret, SecretError> {
        let given = [
            self.inline.is_some(),
            self.file.is_some(),
            self.env.is_some(),
        ]
        .iter()
        .filter(|set| **set)
        .count();
        if given > 1 {
            return Err(SecretError::Ambiguous { key: key.into() });
        }
        let value = if let Some(value) = &self.inline {
            value.clone()
        } else if let Some(path) = &self.file {
            std::fs::read_to_string(path)
                .map_err(|source| SecretError::Unreadable {
                    key: key.into(),
                    path: path.clone(),
                    source,
                })?
                .trim_end_matches(['\n', '\r'])
                .to_string()
        } else if let Some(var) = &self.env {
            std::env::var(var).map_err(|_| SecretError::Unset {
                key: key.into(),
                var: var.clone(),
            })?
        } else {
            return Err(SecretError::Missing { key: key.into() });
        };
        if value.trim().is_empty() {
            return Err(SecretError::Empty { key: key.into() });
        }
        Ok(Secret::new(value))
    }
}

static KNOWN: RwLock<Vec<String>> = RwLock::new(Vec::new());

fn register(value: &str) {
    // Very short values would blank out ordinary words; nobody uses a 3-character token.
    if value.len() < 4 {
        return;
    }
    let mut known = KNOWN.write().unwrap_or_else(|e| e.into_inner());
    if !known.iter().any(|k| k == value) {
        known.push(value.to_string());
    }
}

/// Secrets at least this long cannot be an ordinary word: they are blanked wherever they occur.
/// Shorter ones only where they stand whole (`config check` warns about them).
pub const SHORT_SECRET: usize = 12;

/// Characters that continue a word: a short secret next to one of them is part of another word
/// (an Odoo key `admin` leaves "admin-api" alone) and is not blanked there.
fn word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

/// Whether the text beside a match (its characters walking away from it) continues the word:
/// a word character, or a dot that joins two words (`admin.listen`), not a full stop.
fn continues(mut beside: impl Iterator<Item = char>) -> bool {
    match beside.next() {
        Some('.') => beside.next().is_some_and(word_char),
        Some(c) => word_char(c),
        None => false,
    }
}

/// Replaces every known secret in `text` with `[redacted]`: a long one wherever it occurs, a
/// short one only where it is a whole word.
pub fn scrub(text: &str) -> String {
    let known = KNOWN.read().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_string();
    for secret in known.iter() {
        if !out.contains(secret.as_str()) {
            continue;
        }
        if secret.chars().count() >= SHORT_SECRET {
            out = out.replace(secret.as_str(), "[redacted]");
            continue;
        }
        // Judged against the whole text: a match right after another sees the one before it.
        let mut scrubbed = String::with_capacity(out.len());
        let mut copied = 0;
        for (at, _) in out.match_indices(secret.as_str()) {
            let end = at + secret.len();
            if !continues(out[..at].chars().rev()) && !continues(out[end..].chars()) {
                scrubbed.push_str(&out[copied..at]);
                scrubbed.push_str("[redacted]");
                copied = end;
            }
        }
        scrubbed.push_str(&out[copied..]);
        out = scrubbed;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("s3cr3t-value-123");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert_eq!(s.expose(), "s3cr3t-value-123");
    }

    #[test]
    fn scrub_blanks_registered_secrets() {
        let _ = Secret::new("tok-ABCDEFG-999");
        assert_eq!(
            scrub("401: bad token tok-ABCDEFG-999 given"),
            "401: bad token [redacted] given"
        );
    }

    #[test]
    fn a_short_secret_is_blanked_only_where_it_stands_whole() {
        let _ = Secret::new("admin");
        assert_eq!(
            scrub("the admin-api flavour needs the stock location; key admin, login 'admin' for administrators"),
            "the admin-api flavour needs the stock location; key [redacted], login '[redacted]' for administrators"
        );
        assert_eq!(
            scrub("admin.listen: taken; the key was admin. x.admin"),
            "admin.listen: taken; the key was [redacted]. x.admin"
        );
        // A match glued to another is part of one word, the second one too.
        assert_eq!(scrub("adminadmin admin"), "adminadmin [redacted]");
        assert_eq!(scrub("admin"), "[redacted]");
        // A long one goes wherever it is, even glued to other text.
        let _ = Secret::new("k3y-0123456789abcdef");
        assert_eq!(
            scrub("url?key=k3y-0123456789abcdef&x and xk3y-0123456789abcdefx"),
            "url?key=[redacted]&x and x[redacted]x"
        );
    }

    #[test]
    fn missing_file_names_the_key() {
        let spec = SecretSpec {
            file: Some("/nonexistent/marketsync-token".into()),
            ..Default::default()
        };
        let err = spec
            .resolve("channels.cartona.token")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "channels.cartona.token_file: cannot read /nonexistent/marketsync-token"
            ),
            "{err}"
        );
    }
}
