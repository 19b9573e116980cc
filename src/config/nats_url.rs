//! NATS server URLs as configured: redacted wherever they are printed, and split into the
//! address and the credentials a URL may carry in its user-info (`nats://user:pass@host`,
//! `nats://token@host`), which the client is given as options (it does not use a URL's
//! user-info on its own, and an address without them can be logged).

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

use super::redact::redact_url;

/// A NATS server URL as configured. It may carry credentials in its user-info, so `Debug`
/// and `Serialize` show it through [`redact_url`]; [`NatsUrl::expose`] gives the URL itself to
/// the code that connects (there is no `Display` or `Deref`, so it cannot be printed by
/// accident).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct NatsUrl(String);

impl NatsUrl {
    /// The URL as configured, credentials included. Never log or format it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for NatsUrl {
    fn from(url: String) -> Self {
        Self(url)
    }
}

impl From<&str> for NatsUrl {
    fn from(url: &str) -> Self {
        Self(url.to_string())
    }
}

impl PartialEq<&str> for NatsUrl {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for NatsUrl {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl fmt::Debug for NatsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&redact_url(&self.0), f)
    }
}

impl Serialize for NatsUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&redact_url(&self.0))
    }
}

/// Credentials written into a server URL (`nats://user:password@host`, or `nats://token@host`).
#[derive(Clone, PartialEq, Eq)]
pub enum UrlCredentials {
    /// `user:password@`.
    UserPassword(String, String),
    /// A lone user-info part: a token.
    Token(String),
}

impl fmt::Debug for UrlCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlCredentials::UserPassword(user, _) => {
                write!(f, "UserPassword({user:?}, <redacted>)")
            }
            UrlCredentials::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

impl NatsUrl {
    /// The URL without user-info, and the credentials that were in it. The error never
    /// echoes the URL (it may hold a password).
    pub fn split_credentials(&self) -> Result<(url::Url, Option<UrlCredentials>), String> {
        let mut url = url::Url::parse(&self.0).map_err(|e| format!("is not a valid URL ({e})"))?;
        let creds = match (url.username(), url.password()) {
            ("", None) => None,
            (user, Some(pass)) => Some(UrlCredentials::UserPassword(
                percent_decode(user),
                percent_decode(pass),
            )),
            (token, None) => Some(UrlCredentials::Token(percent_decode(token))),
        };
        if creds.is_some() {
            let _ = url.set_username("");
            let _ = url.set_password(None);
        }
        Ok((url, creds))
    }
}

/// The credentials the URLs carry: all the same, or none. `other_auth` says whether
/// `nats.user`, `nats.token` or `nats.creds_file` is set, which URL credentials exclude.
/// On error: the index of the offending URL and why.
pub fn url_credentials(
    urls: &[NatsUrl],
    other_auth: bool,
) -> Result<Option<UrlCredentials>, (usize, String)> {
    let mut found: Option<UrlCredentials> = None;
    for (index, url) in urls.iter().enumerate() {
        let (_, creds) = url.split_credentials().map_err(|e| (index, e))?;
        let Some(creds) = creds else { continue };
        if other_auth {
            return Err((
                index,
                "carries credentials while nats.user, nats.token or nats.creds_file is also set; use one".into(),
            ));
        }
        match &found {
            Some(earlier) if *earlier != creds => {
                return Err((
                    index,
                    "carries credentials different from an earlier URL's".into(),
                ))
            }
            _ => found = Some(creds),
        }
    }
    Ok(found)
}

/// A URL's user-info is percent-encoded (`p%40ss` for `p@ss`).
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}
