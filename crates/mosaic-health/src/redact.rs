//! Keeping credentials out of targets, errors and reports.

use std::fmt;

use zeroize::Zeroizing;

use crate::ProbeError;

/// What a redacted password is replaced with.
pub const REDACTED: &str = "***";

/// A server URL that may carry credentials, such as `postgresql://mosaic:mosaic@localhost:5433/mosaic`.
///
/// The full text is kept in zeroizing memory and only handed out by
/// [`expose_secret`](Self::expose_secret); `Debug` and `Display` show the [redacted](Self::redacted) form.
#[derive(Clone)]
pub struct ServerUrl {
    full: Zeroizing<String>,
    redacted: String,
    scheme: String,
    host: String,
    port: Option<u16>,
    secrets: Redactor,
}

impl ServerUrl {
    /// Parses `value`, which was read from `setting` (named in the error, e.g. `DATABASE_URL`).
    ///
    /// # Errors
    /// [`ProbeError::InvalidSetting`] when `value` is not an absolute URL with a host. The error never
    /// contains `value` itself.
    pub fn parse(setting: &str, value: &str) -> Result<Self, ProbeError> {
        let invalid = |reason: String| ProbeError::InvalidSetting {
            setting: setting.to_owned(),
            reason,
        };
        // `url::ParseError` describes the problem without echoing the input, so it is safe to show.
        let url = url::Url::parse(value).map_err(|e| invalid(format!("not a URL ({e})")))?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid(format!("the {}: URL names no host", url.scheme())))?
            .to_owned();
        let mut secrets = Redactor::default();
        if let Some(password) = url.password() {
            secrets.add(password);
        }
        Ok(Self {
            redacted: redact_url(value),
            scheme: url.scheme().to_owned(),
            host,
            port: url.port(),
            secrets,
            full: Zeroizing::new(value.to_owned()),
        })
    }

    /// The URL with its password, for handing to a driver. Never print it.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.full
    }

    /// The URL with its password replaced by `***`.
    #[must_use]
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// The scheme, e.g. `postgresql`.
    #[must_use]
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// `host:port`, with the scheme's default port when the URL names none (`localhost:5433`).
    #[must_use]
    pub fn target(&self) -> String {
        match self.port.or_else(|| default_port(&self.scheme)) {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }

    /// A redactor that removes this URL's password (raw and percent-decoded) from any text.
    #[must_use]
    pub fn redactor(&self) -> &Redactor {
        &self.secrets
    }
}

impl fmt::Debug for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ServerUrl").field(&self.redacted).finish()
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "postgres" | "postgresql" => Some(5432),
        "redis" | "rediss" | "valkey" | "valkeys" => Some(6379),
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    }
}

/// Removes known secrets and URL passwords from free text, such as a driver's error message (drivers
/// may echo the URL they were given).
///
/// `Debug` lists nothing secret.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<Zeroizing<String>>,
}

impl Redactor {
    /// Masks URL passwords only; knows no other secret.
    pub(crate) const EMPTY: Self = Self {
        secrets: Vec::new(),
    };

    /// A redactor that only masks passwords inside URLs.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Also replace every occurrence of `secret`, and of its percent-decoded form, with `***`.
    pub fn add(&mut self, secret: &str) {
        let decoded = percent_encoding::percent_decode_str(secret).decode_utf8_lossy();
        for candidate in [secret, decoded.as_ref()] {
            if !candidate.is_empty() && !self.secrets.iter().any(|s| s.as_str() == candidate) {
                self.secrets.push(Zeroizing::new(candidate.to_owned()));
            }
        }
        // Longest first, so that a secret containing another is replaced whole.
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// Also remove everything `other` removes.
    pub fn extend(&mut self, other: &Self) {
        for secret in &other.secrets {
            self.add(secret);
        }
    }

    /// `text` with URL passwords and `password=...` pairs masked, and every known secret replaced by `***`.
    ///
    /// A known secret is replaced where it stands as a whole token (not inside a longer name), so the
    /// password `mosaic` masks `user "mosaic"` but not the database `mosaic_test`: a name equal to the
    /// password cannot be told from it, a longer name can.
    #[must_use]
    pub fn redact(&self, text: &str) -> String {
        let mut out = mask_password_pairs(&mask_url_passwords(text));
        for secret in &self.secrets {
            out = replace_token(&out, secret);
        }
        out
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

/// `url` with its password replaced by `***` (`postgresql://mosaic:***@localhost:5433/mosaic`).
///
/// Text that does not parse as a URL is still masked wherever it looks like `scheme://user:password@`.
#[must_use]
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            if parsed.set_password(Some(REDACTED)).is_ok() {
                parsed.to_string()
            } else {
                mask_url_passwords(url)
            }
        }
        Ok(_) => url.to_owned(),
        Err(_) => mask_url_passwords(url),
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `text` with each whole-token occurrence of `secret` replaced by `***`.
fn replace_token(text: &str, secret: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, _) in text.match_indices(secret) {
        if start < copied {
            continue;
        }
        let end = start + secret.len();
        let before = text[..start].chars().next_back();
        let after = text[end..].chars().next();
        // A secret that starts or ends with a word character must not be glued to another one.
        let glued_before =
            before.is_some_and(is_word_char) && secret.chars().next().is_some_and(is_word_char);
        let glued_after =
            after.is_some_and(is_word_char) && secret.chars().next_back().is_some_and(is_word_char);
        if !glued_before && !glued_after {
            out.push_str(&text[copied..start]);
            out.push_str(REDACTED);
            copied = end;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// Masks the value of `password=...` (libpq key=value connection strings) wherever it appears.
fn mask_password_pairs(text: &str) -> String {
    const KEY: &str = "password=";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(found) = rest.to_ascii_lowercase().find(KEY) {
        let value_start = found + KEY.len();
        out.push_str(&rest[..value_start]);
        let value = &rest[value_start..];
        let value_len = match value.chars().next() {
            Some(quote @ ('\'' | '"')) => value[1..].find(quote).map_or(value.len(), |i| i + 2),
            _ => value
                .find(|c: char| c.is_whitespace() || c == '&' || c == ';')
                .unwrap_or(value.len()),
        };
        if value_len > 0 {
            out.push_str(REDACTED);
        }
        rest = &value[value_len..];
    }
    out.push_str(rest);
    out
}

/// Masks `scheme://user:password@host` wherever it appears in free text.
///
/// Hand-written because the `url` crate parses whole URLs only, and driver messages embed URLs in
/// prose; this is a scan for `://`, then the authority up to the next `/`, `?`, `#`, quote or space.
fn mask_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(found) = rest.find("://") {
        let authority_start = found + 3;
        out.push_str(&rest[..authority_start]);
        let after = &rest[authority_start..];
        let authority_len = after
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '`' | '<' | '>') || c.is_whitespace()
            })
            .unwrap_or(after.len());
        let authority = &after[..authority_len];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push(':');
                        out.push_str(REDACTED);
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[authority_len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_replaced() {
        assert_eq!(
            redact_url("postgresql://mosaic:s3cret@localhost:5433/mosaic"),
            "postgresql://mosaic:***@localhost:5433/mosaic"
        );
        assert_eq!(
            redact_url("redis://:pw@localhost:6380"),
            "redis://:***@localhost:6380"
        );
        assert_eq!(
            redact_url("redis://localhost:6380"),
            "redis://localhost:6380"
        );
        assert_eq!(
            redact_url("postgresql://mosaic@localhost/db"),
            "postgresql://mosaic@localhost/db"
        );
    }

    #[test]
    fn unparseable_urls_are_still_masked() {
        let masked = redact_url("postgresql://u:p@ss word@host:99999/db");
        assert!(!masked.contains("p@ss"), "{masked}");
    }

    #[test]
    fn passwords_inside_prose_are_masked() {
        let text = "error connecting to \"postgres://app:hunter2@db:5432/x\": refused; retry redis://:pw2@q:1.";
        let masked = Redactor::new().redact(text);
        assert_eq!(
            masked,
            "error connecting to \"postgres://app:***@db:5432/x\": refused; retry redis://:***@q:1."
        );
    }

    #[test]
    fn password_pairs_are_masked() {
        let masked = Redactor::new().redact("host=db password=hunter2 user=app; PASSWORD='a b' x");
        assert_eq!(masked, "host=db password=*** user=app; PASSWORD=*** x");
    }

    #[test]
    fn a_secret_is_replaced_as_a_whole_token_only() {
        let mut redactor = Redactor::new();
        redactor.add("mosaic");
        assert_eq!(
            redactor.redact("role \"mosaic\" in mosaic_test and mosaics, mosaic-fed, mosaic."),
            "role \"***\" in mosaic_test and mosaics, ***-fed, ***."
        );
        let mut symbols = Redactor::new();
        symbols.add("#!pw");
        assert_eq!(symbols.redact("x#!pw."), "x***.");
    }

    #[test]
    fn a_known_secret_is_removed_everywhere_in_both_encodings() {
        let url = ServerUrl::parse(
            "DATABASE_URL",
            "postgresql://mosaic:p%40ss%2Fw0rd@localhost:5433/mosaic",
        )
        .unwrap();
        let text = "auth failed with p@ss/w0rd (p%40ss%2Fw0rd)";
        assert_eq!(url.redactor().redact(text), "auth failed with *** (***)");
        assert_eq!(
            url.redacted(),
            "postgresql://mosaic:***@localhost:5433/mosaic"
        );
        assert_eq!(url.target(), "localhost:5433");
        assert!(!format!("{url:?} {url}").contains("p%40ss"));
        assert!(!format!("{:?}", url.redactor()).contains("p@ss"));
        assert_eq!(
            url.expose_secret(),
            "postgresql://mosaic:p%40ss%2Fw0rd@localhost:5433/mosaic"
        );
    }

    #[test]
    fn targets_use_the_schemes_default_port() {
        let pg = ServerUrl::parse("DATABASE_URL", "postgres://u:p@db.example/x").unwrap();
        assert_eq!(pg.target(), "db.example:5432");
        let valkey = ServerUrl::parse("REDIS_URL", "redis://[::1]").unwrap();
        assert_eq!(valkey.target(), "[::1]:6379");
    }

    #[test]
    fn invalid_urls_name_the_setting_and_hide_the_value() {
        let err = ServerUrl::parse("DATABASE_URL", "not a url with secret-pw").unwrap_err();
        assert_eq!(err.code(), "CONFIG");
        let text = format!("{err} {err:?} {}", err.remediation());
        assert!(text.contains("DATABASE_URL"), "{text}");
        assert!(!text.contains("secret-pw"), "{text}");
        let err = ServerUrl::parse("REDIS_URL", "unix:/tmp/sock").unwrap_err();
        assert!(err.to_string().contains("names no host"), "{err}");
    }
}
