//! The `[console]` settings (`SALESTRAINER_CONSOLE__*`): the identity provider the console
//! signs users in with (OIDC authorization code + PKCE, a public client: no secret exists to
//! configure) and the origins its content-security policy lets the voice SDK reach.

use serde::{Deserialize, Serialize};

/// The policy with nothing configured: scripts, styles and calls only to this origin.
pub const BASE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsoleSettings {
    /// The OIDC issuer, e.g. `https://login.example.com/realms/acme`: the console offers
    /// "Sign in with" it, reads its `/.well-known/openid-configuration` and redirects there.
    /// Its tokens must verify with `[auth]` (RS256 keys, issuer, audience). Empty: no
    /// redirect sign-in.
    pub oidc_issuer: String,
    /// The console's client id at the identity provider (a public client; no secret).
    pub oidc_client_id: String,
    /// Space-separated scopes asked for; must include `openid`.
    pub oidc_scopes: String,
    /// Sent as `audience` on the authorization request, for providers that issue access
    /// tokens per API (Auth0 and others); it should equal `[auth] audience`. Empty: not sent.
    pub oidc_audience: String,
    /// Extra `connect-src` sources (space-separated) of the console's content-security
    /// policy: the voice provider's API and media servers by default. The issuer's origin is
    /// added by itself; add the token endpoint's origin here if it differs.
    pub connect_src: String,
    /// Extra `script-src` sources: the voice SDK loads Daily's call machine from its CDN.
    pub script_src: String,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            oidc_issuer: String::new(),
            oidc_client_id: String::new(),
            oidc_scopes: "openid profile".into(),
            oidc_audience: String::new(),
            connect_src: "https://api.vapi.ai https://*.daily.co wss://*.daily.co".into(),
            script_src: "https://c.daily.co".into(),
        }
    }
}

/// What the app needs for redirect sign-in (all public).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Oidc {
    pub issuer: String,
    pub client_id: String,
    pub scopes: String,
    pub audience: String,
}

impl ConsoleSettings {
    /// Redirect sign-in, where an issuer and a client id are configured.
    pub fn oidc(&self) -> Option<Oidc> {
        let issuer = self.oidc_issuer.trim().trim_end_matches('/');
        (!issuer.is_empty() && !self.oidc_client_id.trim().is_empty()).then(|| Oidc {
            issuer: issuer.to_owned(),
            client_id: self.oidc_client_id.trim().to_owned(),
            scopes: self
                .oidc_scopes
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
            audience: self.oidc_audience.trim().to_owned(),
        })
    }

    /// Refuses, at start, settings the console could not use or that would bend its policy.
    pub fn check(&self) -> anyhow::Result<()> {
        let issuer = self.oidc_issuer.trim();
        if !issuer.is_empty() {
            let origin = origin(issuer).ok_or_else(|| {
                anyhow::anyhow!(
                    "console.oidc_issuer must be an https URL (http only on loopback), got {issuer:?}"
                )
            })?;
            let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
                .iter()
                .any(|l| origin == *l || origin.starts_with(&format!("{l}:")));
            anyhow::ensure!(
                origin.starts_with("https://") || loopback,
                "console.oidc_issuer must use https (http only on loopback), got {issuer:?}"
            );
            anyhow::ensure!(
                !self.oidc_client_id.trim().is_empty(),
                "console.oidc_client_id is required with console.oidc_issuer"
            );
            anyhow::ensure!(
                self.oidc_scopes.split_whitespace().any(|s| s == "openid"),
                "console.oidc_scopes must include openid"
            );
        }
        for (name, list) in [
            ("console.connect_src", &self.connect_src),
            ("console.script_src", &self.script_src),
        ] {
            if let Some(bad) = list.split_whitespace().find(|t| !source_ok(t)) {
                anyhow::bail!(
                    "{name}: {bad:?} is not a source (scheme://host[:port][/path] or scheme:)"
                );
            }
        }
        Ok(())
    }

    /// The content-security policy of the page and its assets: this origin, plus the
    /// identity provider's origin and the configured voice sources. Call [`Self::check`]
    /// first; sources that fail it are left out.
    pub fn csp(&self) -> String {
        let issuer = self.oidc().and_then(|o| origin(&o.issuer));
        let connect: Vec<&str> = std::iter::once("'self'")
            .chain(issuer.as_deref())
            .chain(self.connect_src.split_whitespace().filter(|t| source_ok(t)))
            .collect();
        let script: Vec<&str> = std::iter::once("'self'")
            .chain(self.script_src.split_whitespace().filter(|t| source_ok(t)))
            .collect();
        format!(
            "default-src 'self'; script-src {}; style-src 'self'; img-src 'self' data:; \
             font-src 'self'; connect-src {}; object-src 'none'; base-uri 'none'; \
             form-action 'self'; frame-ancestors 'none'",
            script.join(" "),
            connect.join(" ")
        )
    }
}

/// `scheme://host[:port]` of an absolute URL.
fn origin(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?;
    let authority = uri.authority()?;
    if authority.as_str().contains('@') || !matches!(scheme, "http" | "https") {
        return None;
    }
    Some(format!("{scheme}://{authority}"))
}

/// A CSP source expression we accept from settings: `scheme:` or `scheme://host…`, with none
/// of the characters that would end the directive or the header (`;`, `,`, quotes, spaces).
fn source_ok(t: &str) -> bool {
    let chars_ok = t
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._~:/*[]%".contains(c));
    let scheme_only = t.len() > 1
        && t.ends_with(':')
        && t[..t.len() - 1].chars().all(|c| c.is_ascii_alphabetic());
    let with_host = t.split_once("://").is_some_and(|(scheme, rest)| {
        !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphabetic()) && !rest.is_empty()
    });
    chars_ok && (scheme_only || with_host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_allow_the_voice_sdk_and_nothing_else() {
        let s = ConsoleSettings::default();
        s.check().unwrap();
        assert!(s.oidc().is_none());
        let csp = s.csp();
        assert!(
            csp.contains(
                "connect-src 'self' https://api.vapi.ai https://*.daily.co wss://*.daily.co;"
            ),
            "{csp}"
        );
        assert!(
            csp.contains("script-src 'self' https://c.daily.co;"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"));
    }

    #[test]
    fn the_issuer_origin_joins_connect_src() {
        let s = ConsoleSettings {
            oidc_issuer: "https://idp.example.com/realms/acme/".into(),
            oidc_client_id: "console".into(),
            connect_src: String::new(),
            ..ConsoleSettings::default()
        };
        s.check().unwrap();
        let o = s.oidc().unwrap();
        assert_eq!(o.issuer, "https://idp.example.com/realms/acme");
        assert_eq!(o.scopes, "openid profile");
        assert!(
            s.csp()
                .contains("connect-src 'self' https://idp.example.com;"),
            "{}",
            s.csp()
        );
    }

    #[test]
    fn unusable_or_policy_bending_settings_stop_the_start() {
        let with = |f: fn(&mut ConsoleSettings)| {
            let mut s = ConsoleSettings {
                oidc_issuer: "https://idp.example.com".into(),
                oidc_client_id: "console".into(),
                ..ConsoleSettings::default()
            };
            f(&mut s);
            s.check()
        };
        assert!(with(|_| {}).is_ok());
        assert!(with(|s| s.oidc_issuer = "http://idp.example.com".into()).is_err());
        assert!(with(|s| s.oidc_issuer = "http://127.0.0.1:9000".into()).is_ok());
        assert!(with(|s| s.oidc_issuer = "idp.example.com".into()).is_err());
        assert!(with(|s| s.oidc_client_id = " ".into()).is_err());
        assert!(with(|s| s.oidc_scopes = "profile".into()).is_err());
        assert!(with(|s| s.connect_src = "https://x; script-src *".into()).is_err());
        assert!(with(|s| s.connect_src = "'unsafe-inline'".into()).is_err());
        assert!(with(|s| s.script_src = "blob: https://cdn.example.com".into()).is_ok());
    }
}
