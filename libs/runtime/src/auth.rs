//! Bearer-JWT authentication. Users carry subject, organization and role; services carry a
//! service identity and are the only callers allowed on internal RPCs.

use std::{
    collections::HashSet,
    path::Path,
    sync::Arc,
    task::{Context, Poll},
    time::{SystemTime, UNIX_EPOCH},
};

use futures::future::BoxFuture;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tonic::Status;

use crate::{
    error::{ApiError, ApiResult},
    settings::AuthSettings,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Manager,
    Trainee,
    /// Another Salestrainer service; the only role allowed on internal RPCs.
    Service,
}

impl Role {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "admin" => Some(Self::Admin),
            "manager" => Some(Self::Manager),
            "trainee" => Some(Self::Trainee),
            "service" => Some(Self::Service),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    /// Organization id (the `{organization}` of `organizations/{organization}`); empty for services.
    #[serde(default)]
    pub org: String,
    pub role: Role,
    pub exp: u64,
    #[serde(default)]
    pub iat: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub iss: String,
}

/// Who is calling, as established by the auth layer; handlers read it from request extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub subject: String,
    pub organization: String,
    pub role: Role,
}

impl Principal {
    /// From a tonic request's extensions (set by [`AuthLayer`]).
    pub fn of<T>(req: &tonic::Request<T>) -> ApiResult<&Principal> {
        req.extensions()
            .get::<Principal>()
            .ok_or_else(|| ApiError::Unauthenticated("missing credentials".into()))
    }

    pub fn is_service(&self) -> bool {
        self.role == Role::Service
    }

    /// The resource name of the caller's organization.
    pub fn organization_name(&self) -> String {
        format!("organizations/{}", self.organization)
    }

    /// Services act for any organization; users only for their own.
    pub fn can_access_organization(&self, organization_id: &str) -> bool {
        self.is_service() || self.organization == organization_id
    }

    pub fn require_role(&self, allowed: &[Role]) -> ApiResult<()> {
        if self.is_service() || allowed.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::PermissionDenied(format!(
                "role {:?} may not do this",
                self.role
            )))
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Verifies tokens: HS256 with the development secret and/or RS256 with configured keys.
pub struct JwtVerifier {
    hs256: Option<DecodingKey>,
    rs256: Vec<DecodingKey>,
    issuer: String,
}

impl JwtVerifier {
    pub fn new(
        hs256_secret: Option<&[u8]>,
        rs256_pems: &[Vec<u8>],
        issuer: &str,
    ) -> anyhow::Result<Self> {
        let rs256 = rs256_pems
            .iter()
            .map(|pem| DecodingKey::from_rsa_pem(pem))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            hs256: hs256_secret.map(DecodingKey::from_secret),
            rs256,
            issuer: issuer.to_owned(),
        })
    }

    /// From settings; the dev secret must already be resolved (see [`dev_secret`]).
    pub fn from_settings(
        settings: &AuthSettings,
        dev_secret: Option<&[u8]>,
    ) -> anyhow::Result<Self> {
        let mut pems = Vec::new();
        for key in &settings.rs256_public_keys {
            if key.contains("-----BEGIN") {
                pems.push(key.as_bytes().to_vec());
            } else {
                pems.push(std::fs::read(key)?);
            }
        }
        Self::new(dev_secret, &pems, &settings.issuer)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, &'static str> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| "malformed token")?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = 30;
        validation.validate_aud = false;
        if !self.issuer.is_empty() {
            validation.set_issuer(&[&self.issuer]);
        }
        validation.set_required_spec_claims(&["exp", "sub"]);
        let keys: Vec<&DecodingKey> = match header.alg {
            Algorithm::HS256 => self.hs256.iter().collect(),
            Algorithm::RS256 => self.rs256.iter().collect(),
            _ => return Err("unsupported token algorithm"),
        };
        for key in keys {
            if let Ok(data) = jsonwebtoken::decode::<Claims>(token, key, &validation) {
                if data.claims.role != Role::Service && data.claims.org.is_empty() {
                    return Err("token has no organization");
                }
                return Ok(data.claims);
            }
        }
        Err("invalid token")
    }
}

/// Mints HS256 tokens: development tokens and the service identities of embedded mode.
#[derive(Clone)]
pub struct TokenMinter {
    key: EncodingKey,
    issuer: String,
}

impl TokenMinter {
    pub fn new(secret: &[u8], issuer: &str) -> Self {
        Self {
            key: EncodingKey::from_secret(secret),
            issuer: issuer.to_owned(),
        }
    }

    pub fn mint(
        &self,
        subject: &str,
        organization: &str,
        role: Role,
        ttl_secs: u64,
    ) -> anyhow::Result<String> {
        let now = now_secs();
        let claims = Claims {
            sub: subject.to_owned(),
            org: organization.to_owned(),
            role,
            iat: now,
            exp: now + ttl_secs,
            iss: self.issuer.clone(),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.key,
        )?)
    }

    pub fn service_token(&self, service: &str) -> anyhow::Result<String> {
        self.mint(&format!("service:{service}"), "", Role::Service, 24 * 3600)
    }
}

/// The configured dev secret, else one generated into `data_dir/dev-jwt.secret` on first use.
pub fn dev_secret(settings: &AuthSettings, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if !settings.dev_secret.is_empty() {
        return Ok(settings.dev_secret.as_bytes().to_vec());
    }
    let path = data_dir.join("dev-jwt.secret");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        return Ok(existing.trim().as_bytes().to_vec());
    }
    std::fs::create_dir_all(data_dir)?;
    let secret = crate::crypto::random_token(32);
    crate::crypto::write_private_file(&path, secret.as_bytes())?;
    Ok(secret.into_bytes())
}

/// Which paths need no token and which accept only service identities.
#[derive(Clone, Debug, Default)]
pub struct AuthPolicy {
    public_prefixes: Vec<String>,
    public_paths: HashSet<String>,
    internal_methods: HashSet<String>,
}

impl AuthPolicy {
    pub fn new() -> Self {
        Self {
            public_prefixes: vec![
                "/grpc.health.v1.Health/".into(),
                "/grpc.reflection.v1.ServerReflection/".into(),
                "/grpc.reflection.v1alpha.ServerReflection/".into(),
            ],
            public_paths: HashSet::new(),
            internal_methods: HashSet::new(),
        }
    }
    /// Exact paths that need no token (the console's page at `/`; a prefix `/` would open
    /// every RPC).
    pub fn public_path(&mut self, path: impl Into<String>) {
        self.public_paths.insert(path.into());
    }
    /// Paths that authenticate themselves (e.g. webhooks with their own signature).
    pub fn public_prefix(&mut self, prefix: impl Into<String>) {
        self.public_prefixes.push(prefix.into());
    }
    /// `/package.Service/Method` paths callable only with a service identity.
    pub fn internal_method(&mut self, path: impl Into<String>) {
        self.internal_methods.insert(path.into());
    }
    fn is_public(&self, path: &str) -> bool {
        self.public_paths.contains(path)
            || self
                .public_prefixes
                .iter()
                .any(|p| path.starts_with(p.as_str()))
    }
}

/// Tower layer that authenticates every non-public request and inserts the [`Principal`].
#[derive(Clone)]
pub struct AuthLayer {
    verifier: Arc<JwtVerifier>,
    policy: Arc<AuthPolicy>,
}

impl AuthLayer {
    pub fn new(verifier: Arc<JwtVerifier>, policy: AuthPolicy) -> Self {
        Self {
            verifier,
            policy: Arc::new(policy),
        }
    }

    fn check<B>(&self, req: &http::Request<B>) -> Result<Option<Principal>, Status> {
        let path = req.uri().path();
        if self.policy.is_public(path) {
            return Ok(None);
        }
        let token = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .ok_or_else(|| Status::unauthenticated("missing bearer token"))?;
        let claims = self
            .verifier
            .verify(token.trim())
            .map_err(Status::unauthenticated)?;
        if self.policy.internal_methods.contains(path) && claims.role != Role::Service {
            return Err(Status::permission_denied(
                "this method is internal: service identities only",
            ));
        }
        Ok(Some(Principal {
            subject: claims.sub,
            organization: claims.org,
            role: claims.role,
        }))
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    layer: AuthLayer,
}

impl<S, B> tower::Service<http::Request<B>> for AuthService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        match self.layer.check(&req) {
            Ok(principal) => {
                if let Some(p) = principal {
                    req.extensions_mut().insert(p);
                }
                // Take the service that was driven to readiness, leave a fresh clone behind.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(async move { inner.call(req).await })
            }
            Err(status) => Box::pin(async move { Ok(status.into_http()) }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_path_opens_only_itself() {
        let mut policy = AuthPolicy::new();
        policy.public_path("/");
        policy.public_prefix("/assets/");
        assert!(policy.is_public("/"));
        assert!(policy.is_public("/assets/index-1.js"));
        assert!(!policy.is_public("/salestrainer.config.v1.ConfigService/ListMembers"));
        assert!(!policy.is_public("/index.html"));
    }

    #[test]
    fn hs256_round_trip_and_bad_signature() {
        let minter = TokenMinter::new(b"secret-a", "");
        let token = minter.mint("alice", "acme", Role::Manager, 60).unwrap();
        let good = JwtVerifier::new(Some(b"secret-a"), &[], "").unwrap();
        let claims = good.verify(&token).unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.org.as_str(), claims.role),
            ("alice", "acme", Role::Manager)
        );
        let other = JwtVerifier::new(Some(b"secret-b"), &[], "").unwrap();
        assert!(other.verify(&token).is_err());
    }

    #[test]
    fn expired_token_is_refused() {
        let minter = TokenMinter::new(b"k", "");
        let now = now_secs();
        let claims = Claims {
            sub: "a".into(),
            org: "o".into(),
            role: Role::Admin,
            exp: now - 3600,
            iat: now - 7200,
            iss: String::new(),
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &minter.key).unwrap();
        let v = JwtVerifier::new(Some(b"k"), &[], "").unwrap();
        assert!(v.verify(&token).is_err());
    }

    #[test]
    fn user_token_without_organization_is_refused() {
        let minter = TokenMinter::new(b"k", "");
        let token = minter.mint("a", "", Role::Admin, 60).unwrap();
        let v = JwtVerifier::new(Some(b"k"), &[], "").unwrap();
        assert!(v.verify(&token).is_err());
        assert!(v.verify(&minter.service_token("grading").unwrap()).is_ok());
    }
}
