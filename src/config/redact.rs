//! Keeping secrets out of every output: [`Secret`] prints as `<redacted>` wherever it is
//! formatted or serialized, so a new secret setting is safe by its type alone; URLs may carry a
//! password in their user-info and are redacted when serialized.

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

const REDACTED: &str = "<redacted>";

/// A secret string. `Debug`, `Display` and `Serialize` print `<redacted>`; use
/// [`Secret::expose`] where the value is really needed (connecting, decrypting).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Never log or format it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

/// `nats://user:pass@host` -> `nats://user:<redacted>@host`; a lone user-info (a token) is
/// redacted whole.
pub fn redact_url(u: &str) -> String {
    let Some((scheme, rest)) = u.split_once("://") else {
        return u.to_string();
    };
    // Everything up to the last `@` counts as user-info, even past a `/`: a URL parser would
    // call `nats://tok/en@host` host `tok` with a path, but what it hides is a token someone
    // typed, and NATS URLs have no `@` in their paths.
    let Some((userinfo, host_and_path)) = rest.rsplit_once('@') else {
        return u.to_string();
    };
    let userinfo = match userinfo.split_once(':') {
        Some((user, _)) if !user.contains('/') => format!("{user}:{REDACTED}"),
        _ => REDACTED.to_string(),
    };
    format!("{scheme}://{userinfo}@{host_and_path}")
}
