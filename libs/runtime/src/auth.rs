//! Bearer-JWT authentication. Users carry subject, organization and role; services carry a
//! service identity and are the only callers allowed on internal RPCs.

use std::{
    collections::HashSet,
    path::Path,
    sync::Arc,
    task::{Context, Poll},
    time::{SystemTime, UNIX_EPOCH},
};

use futures::future::{BoxFuture, Either};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tonic::Status;

use crate::{
    access::Memberships,
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
        [
            ("admin", Self::Admin),
            ("manager", Self::Manager),
            ("trainee", Self::Trainee),
            ("service", Self::Service),
        ]
        .into_iter()
        .find(|(name, _)| s.eq_ignore_ascii_case(name))
        .map(|(_, role)| role)
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
    /// Not before (seconds since the epoch), honoured when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Audience: service identities carry [`SERVICE_AUDIENCE`].
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub aud: String,
}

/// The audience of service identities; user tokens never carry it.
pub const SERVICE_AUDIENCE: &str = "salestrainer-services";

/// The shortest HS256 secret accepted (RFC 7518 §3.2: at least the hash's size).
pub const MIN_SECRET_BYTES: usize = 32;

/// The key that signs service identities when none is configured: derived one-way from the
/// HS256 secret, so it is distinct from every key that signs user tokens and nobody holding
/// a user token can compute it.
pub fn derived_service_key(secret: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"salestrainer service identity key\0");
    h.update(secret);
    h.finalize().to_vec()
}

/// Who is calling, as established by the auth layer; handlers read it from request extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub subject: String,
    pub organization: String,
    pub role: Role,
    /// The caller's member id in `organization` (the `{member}` of
    /// `organizations/{organization}/members/{member}`) once the auth layer checked their
    /// stored membership; `None` for services and where no membership source is set.
    pub member_id: Option<Arc<str>>,
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

/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;

/// Verifies tokens. Users: HS256 with the development secret (unless production RS256 keys
/// are configured and development tokens are not explicitly allowed) and/or RS256 with the
/// identity provider's keys. Services: HS256 with the service key only — a user token claiming
/// the service role is refused, whoever signed it.
pub struct JwtVerifier {
    hs256: Option<DecodingKey>,
    rs256: Vec<DecodingKey>,
    service: DecodingKey,
    issuer: String,
    audience: String,
}

impl JwtVerifier {
    /// `hs256_secret` signs user tokens; the service key is derived from it (see
    /// [`derived_service_key`]) unless [`Self::with_service_key`] sets one.
    pub fn new(
        hs256_secret: Option<&[u8]>,
        rs256_pems: &[Vec<u8>],
        issuer: &str,
    ) -> anyhow::Result<Self> {
        let rs256 = rs256_pems
            .iter()
            .map(|pem| DecodingKey::from_rsa_pem(pem))
            .collect::<Result<Vec<_>, _>>()?;
        let service = derived_service_key(hs256_secret.unwrap_or_default());
        Ok(Self {
            hs256: hs256_secret.map(DecodingKey::from_secret),
            rs256,
            service: DecodingKey::from_secret(&service),
            issuer: issuer.to_owned(),
            audience: String::new(),
        })
    }

    pub fn with_service_key(mut self, key: &[u8]) -> Self {
        self.service = DecodingKey::from_secret(key);
        self
    }

    /// Requires this `aud` on user tokens.
    pub fn with_audience(mut self, audience: &str) -> Self {
        self.audience = audience.to_owned();
        self
    }

    /// From settings; the dev secret must already be resolved (see [`dev_secret`]) and the
    /// checks of [`check_secrets`] passed.
    pub fn from_settings(settings: &AuthSettings, dev_secret: &[u8]) -> anyhow::Result<Self> {
        let mut pems = Vec::new();
        for key in &settings.rs256_public_keys {
            if key.contains("-----BEGIN") {
                pems.push(key.as_bytes().to_vec());
            } else {
                pems.push(std::fs::read(key)?);
            }
        }
        // Production (RS256 configured): development tokens only when explicitly allowed.
        let user_hs256 = (pems.is_empty() || settings.allow_dev_tokens).then_some(dev_secret);
        let mut v = Self::new(user_hs256, &pems, &settings.issuer)?
            .with_service_key(&service_key(settings, dev_secret))
            .with_audience(&settings.audience);
        if user_hs256.is_none() {
            v.hs256 = None;
        }
        Ok(v)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, &'static str> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| "malformed token")?;
        if header.alg == Algorithm::HS256 {
            let mut v = self.validation(header.alg);
            v.validate_aud = true;
            v.set_audience(&[SERVICE_AUDIENCE]);
            if let Ok(data) = jsonwebtoken::decode::<Claims>(token, &self.service, &v) {
                if data.claims.role == Role::Service {
                    return Ok(data.claims);
                }
                return Err("service keys sign service identities only");
            }
        }
        let mut validation = self.validation(header.alg);
        if self.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.validate_aud = true;
            validation.set_audience(&[&self.audience]);
            let mut required = vec!["exp", "sub", "aud"];
            if !self.issuer.is_empty() {
                required.push("iss");
            }
            validation.set_required_spec_claims(&required);
        }
        let keys: Vec<&DecodingKey> = match header.alg {
            Algorithm::HS256 => self.hs256.iter().collect(),
            Algorithm::RS256 => self.rs256.iter().collect(),
            _ => return Err("unsupported token algorithm"),
        };
        for key in keys {
            if let Ok(data) = jsonwebtoken::decode::<Claims>(token, key, &validation) {
                if data.claims.role == Role::Service {
                    return Err("a user token cannot carry the service role");
                }
                if data.claims.org.is_empty() {
                    return Err("token has no organization");
                }
                return Ok(data.claims);
            }
        }
        Err("invalid token")
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut validation = Validation::new(alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        let mut required = vec!["exp", "sub"];
        if !self.issuer.is_empty() {
            validation.set_issuer(&[&self.issuer]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        validation
    }
}

/// The key of service identities: `auth.service_secret`, else derived from the HS256 secret.
pub fn service_key(settings: &AuthSettings, dev_secret: &[u8]) -> Vec<u8> {
    if settings.service_secret.is_empty() {
        derived_service_key(dev_secret)
    } else {
        settings.service_secret.as_bytes().to_vec()
    }
}

/// Refuses, at start, secrets too short to sign with.
pub fn check_secrets(settings: &AuthSettings, dev_secret: &[u8]) -> anyhow::Result<()> {
    if dev_secret.len() < MIN_SECRET_BYTES {
        anyhow::bail!(
            "auth.dev_secret (SALESTRAINER_AUTH__DEV_SECRET) is {} bytes; at least {MIN_SECRET_BYTES} are required",
            dev_secret.len()
        );
    }
    let service = settings.service_secret.len();
    if service != 0 && service < MIN_SECRET_BYTES {
        anyhow::bail!(
            "auth.service_secret (SALESTRAINER_AUTH__SERVICE_SECRET) is {service} bytes; at least {MIN_SECRET_BYTES} are required"
        );
    }
    Ok(())
}

/// Mints HS256 tokens: development user tokens with the HS256 secret, service identities with
/// the service key.
#[derive(Clone)]
pub struct TokenMinter {
    key: EncodingKey,
    service: EncodingKey,
    issuer: String,
}

impl TokenMinter {
    /// The service key is derived from `secret` unless [`Self::with_service_key`] sets one.
    pub fn new(secret: &[u8], issuer: &str) -> Self {
        Self {
            key: EncodingKey::from_secret(secret),
            service: EncodingKey::from_secret(&derived_service_key(secret)),
            issuer: issuer.to_owned(),
        }
    }

    pub fn with_service_key(mut self, key: &[u8]) -> Self {
        self.service = EncodingKey::from_secret(key);
        self
    }

    /// A user token. The service role is not mintable here: see [`Self::service_token`].
    pub fn mint(
        &self,
        subject: &str,
        organization: &str,
        role: Role,
        ttl_secs: u64,
    ) -> anyhow::Result<String> {
        anyhow::ensure!(
            role != Role::Service,
            "service identities come from service_token"
        );
        self.sign(
            &self.key,
            subject,
            organization,
            role,
            ttl_secs,
            String::new(),
        )
    }

    pub fn service_token(&self, service: &str) -> anyhow::Result<String> {
        self.sign(
            &self.service,
            &format!("service:{service}"),
            "",
            Role::Service,
            24 * 3600,
            SERVICE_AUDIENCE.to_owned(),
        )
    }

    fn sign(
        &self,
        key: &EncodingKey,
        subject: &str,
        organization: &str,
        role: Role,
        ttl_secs: u64,
        aud: String,
    ) -> anyhow::Result<String> {
        let now = now_secs();
        let claims = Claims {
            sub: subject.to_owned(),
            org: organization.to_owned(),
            role,
            iat: now,
            exp: now + ttl_secs,
            iss: self.issuer.clone(),
            nbf: None,
            aud,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            key,
        )?)
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
    public_paths: HashSet<String, crate::cache::FastHash>,
    internal_methods: HashSet<String, crate::cache::FastHash>,
}

impl AuthPolicy {
    pub fn new() -> Self {
        Self {
            public_prefixes: vec![
                "/grpc.health.v1.Health/".into(),
                "/grpc.reflection.v1.ServerReflection/".into(),
                "/grpc.reflection.v1alpha.ServerReflection/".into(),
            ],
            public_paths: HashSet::default(),
            internal_methods: HashSet::default(),
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

/// Tokens that passed [`JwtVerifier::verify`], by their exact text. A client sends the same
/// token on every call; checking its signatures (two HMACs), decoding and parsing it again each
/// time was the largest cost of an authenticated call. A hit is only as good as a fresh
/// verification: the verifier's keys and rules never change after start, a signature over the
/// same bytes stays valid, `nbf` once passed stays passed, and `exp` is checked again on every
/// hit with the verifier's leeway. Refused tokens are never cached, so callers without a valid
/// token cannot fill it; the bound and the TTL cap what valid ones can hold.
struct VerifiedTokens {
    cache: moka::sync::Cache<Box<str>, Arc<Claims>, crate::cache::FastHash>,
}

impl VerifiedTokens {
    const CAPACITY: u64 = 10_000;
    const TTL: std::time::Duration = std::time::Duration::from_secs(300);

    fn new() -> Self {
        Self {
            cache: moka::sync::Cache::builder()
                .max_capacity(Self::CAPACITY)
                .time_to_live(Self::TTL)
                .build_with_hasher(crate::cache::FastHash::default()),
        }
    }

    fn verify(&self, verifier: &JwtVerifier, token: &str) -> Result<Arc<Claims>, &'static str> {
        if let Some(claims) = self.cache.get(token) {
            // As jsonwebtoken decides expiry: refused once `exp < now - leeway`.
            if claims.exp.saturating_add(LEEWAY_SECS) >= now_secs() {
                return Ok(claims);
            }
            self.cache.invalidate(token);
        }
        let claims = Arc::new(verifier.verify(token)?);
        self.cache.insert(token.into(), claims.clone());
        Ok(claims)
    }
}

/// Tower layer that authenticates every non-public request and inserts the [`Principal`]:
/// the token verified, then (when a membership source is set) the caller's stored role.
#[derive(Clone)]
pub struct AuthLayer {
    verifier: Arc<JwtVerifier>,
    verified: Arc<VerifiedTokens>,
    policy: Arc<AuthPolicy>,
    memberships: Option<Arc<dyn Memberships>>,
}

impl AuthLayer {
    pub fn new(
        verifier: Arc<JwtVerifier>,
        policy: AuthPolicy,
        memberships: Option<Arc<dyn Memberships>>,
    ) -> Self {
        Self {
            verifier,
            verified: Arc::new(VerifiedTokens::new()),
            policy: Arc::new(policy),
            memberships,
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
            .verified
            .verify(&self.verifier, token.trim())
            .map_err(Status::unauthenticated)?;
        if self.policy.internal_methods.contains(path) && claims.role != Role::Service {
            return Err(Status::permission_denied(
                "this method is internal: service identities only",
            ));
        }
        Ok(Some(Principal {
            subject: claims.sub.clone(),
            organization: claims.org.clone(),
            role: claims.role,
            member_id: None,
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
    /// Left: the caller is known at once (public path, service, or a cached membership), the
    /// common case, with no boxed future and no copy of the inner stack. Right: a refusal, or
    /// the membership must be fetched.
    type Future = Either<S::Future, BoxFuture<'static, Result<Self::Response, Self::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let refuse = |status: Status| -> Self::Future {
            Either::Right(Box::pin(async move { Ok(status.into_http()) }))
        };
        let principal = match self.layer.check(&req) {
            Ok(Some(p)) => p,
            Ok(None) => return Either::Left(self.inner.call(req)),
            Err(status) => return refuse(status),
        };
        let principal = match &self.layer.memberships {
            Some(source) if !principal.is_service() => {
                match source.cached(&principal.organization, &principal.subject) {
                    Some(member) => match crate::access::with_stored_member(principal, member) {
                        Ok(p) => p,
                        Err(e) => return refuse(e.into()),
                    },
                    None => return Either::Right(self.resolve_then_call(principal, req)),
                }
            }
            _ => principal,
        };
        req.extensions_mut().insert(principal);
        Either::Left(self.inner.call(req))
    }
}

impl<S> AuthService<S> {
    /// Asks the membership source, then calls the inner service with the resolved caller.
    fn resolve_then_call<B>(
        &mut self,
        principal: Principal,
        mut req: http::Request<B>,
    ) -> BoxFuture<'static, Result<S::Response, S::Error>>
    where
        S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        B: Send + 'static,
    {
        // Take the service that was driven to readiness, leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let memberships = self.layer.memberships.clone();
        Box::pin(async move {
            let p = match &memberships {
                Some(source) => match crate::access::resolve(source.as_ref(), principal).await {
                    Ok(p) => p,
                    Err(e) => return Ok(tonic::Status::from(e).into_http()),
                },
                None => principal,
            };
            req.extensions_mut().insert(p);
            inner.call(req).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &[u8] = b"secret-a-of-thirty-two-bytes-or-more";
    const B: &[u8] = b"secret-b-of-thirty-two-bytes-or-more";

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
        let minter = TokenMinter::new(A, "");
        let token = minter.mint("alice", "acme", Role::Manager, 60).unwrap();
        let good = JwtVerifier::new(Some(A), &[], "").unwrap();
        let claims = good.verify(&token).unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.org.as_str(), claims.role),
            ("alice", "acme", Role::Manager)
        );
        let other = JwtVerifier::new(Some(B), &[], "").unwrap();
        assert!(other.verify(&token).is_err());
    }

    #[test]
    fn expired_token_is_refused() {
        let minter = TokenMinter::new(A, "");
        let now = now_secs();
        let claims = Claims {
            sub: "a".into(),
            org: "o".into(),
            role: Role::Admin,
            exp: now - 3600,
            iat: now - 7200,
            iss: String::new(),
            nbf: None,
            aud: String::new(),
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &minter.key).unwrap();
        let v = JwtVerifier::new(Some(A), &[], "").unwrap();
        assert!(v.verify(&token).is_err());
    }

    #[test]
    fn user_token_without_organization_is_refused() {
        let minter = TokenMinter::new(A, "");
        let token = minter.mint("a", "", Role::Admin, 60).unwrap();
        let v = JwtVerifier::new(Some(A), &[], "").unwrap();
        assert!(v.verify(&token).is_err());
        assert!(v.verify(&minter.service_token("grading").unwrap()).is_ok());
    }

    fn forged(key: &[u8], role: Role, org: &str, aud: &str, nbf: Option<u64>) -> String {
        let now = now_secs();
        let claims = Claims {
            sub: "mallory".into(),
            org: org.into(),
            role,
            exp: now + 600,
            iat: now,
            iss: String::new(),
            nbf,
            aud: aud.into(),
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(key),
        )
        .unwrap()
    }

    #[test]
    fn the_service_role_needs_the_service_key() {
        let v = JwtVerifier::new(Some(A), &[], "").unwrap();
        // A user key cannot make a service, with or without the services' audience.
        for aud in ["", SERVICE_AUDIENCE] {
            let t = forged(A, Role::Service, "", aud, None);
            assert_eq!(
                v.verify(&t).err(),
                Some("a user token cannot carry the service role")
            );
        }
        // The service key makes services only.
        let key = derived_service_key(A);
        assert!(
            v.verify(&forged(&key, Role::Service, "", SERVICE_AUDIENCE, None))
                .is_ok()
        );
        assert!(
            v.verify(&forged(&key, Role::Admin, "acme", SERVICE_AUDIENCE, None))
                .is_err()
        );
        // A service token minted with another key is refused.
        let other = TokenMinter::new(B, "").service_token("call").unwrap();
        assert!(v.verify(&other).is_err());
        assert!(
            TokenMinter::new(A, "")
                .mint("x", "acme", Role::Service, 60)
                .is_err()
        );
        // An explicit service key replaces the derived one on both sides.
        let explicit = b"an-explicit-service-key-of-32-bytes!";
        let v2 = JwtVerifier::new(Some(A), &[], "")
            .unwrap()
            .with_service_key(explicit);
        let m2 = TokenMinter::new(A, "").with_service_key(explicit);
        assert!(v2.verify(&m2.service_token("call").unwrap()).is_ok());
        assert!(
            v2.verify(&TokenMinter::new(A, "").service_token("call").unwrap())
                .is_err()
        );
    }

    #[test]
    fn not_before_audience_and_issuer() {
        let now = now_secs();
        let v = JwtVerifier::new(Some(A), &[], "").unwrap();
        assert!(
            v.verify(&forged(A, Role::Admin, "acme", "", Some(now + 3600)))
                .is_err()
        );
        assert!(
            v.verify(&forged(A, Role::Admin, "acme", "", Some(now - 10)))
                .is_ok()
        );
        let with_aud = JwtVerifier::new(Some(A), &[], "")
            .unwrap()
            .with_audience("console");
        assert!(
            with_aud
                .verify(&forged(A, Role::Admin, "acme", "", None))
                .is_err()
        );
        assert!(
            with_aud
                .verify(&forged(A, Role::Admin, "acme", "other", None))
                .is_err()
        );
        assert!(
            with_aud
                .verify(&forged(A, Role::Admin, "acme", "console", None))
                .is_ok()
        );
        let with_iss = JwtVerifier::new(Some(A), &[], "https://idp").unwrap();
        assert!(
            with_iss
                .verify(&forged(A, Role::Admin, "acme", "", None))
                .is_err()
        );
        assert!(
            with_iss
                .verify(
                    &TokenMinter::new(A, "https://idp")
                        .mint("a", "acme", Role::Admin, 60)
                        .unwrap()
                )
                .is_ok()
        );
    }

    #[test]
    fn production_refuses_development_tokens_unless_allowed() {
        let pem = include_bytes!("../tests/fixtures/rs256-public.pem");
        let mut settings = AuthSettings {
            rs256_public_keys: vec![String::from_utf8_lossy(pem).into_owned()],
            ..AuthSettings::default()
        };
        let dev = TokenMinter::new(A, "")
            .mint("a", "acme", Role::Admin, 60)
            .unwrap();
        let v = JwtVerifier::from_settings(&settings, A).unwrap();
        assert!(v.verify(&dev).is_err());
        // Services still work: their key is not the users'.
        assert!(
            v.verify(&TokenMinter::new(A, "").service_token("call").unwrap())
                .is_ok()
        );
        settings.allow_dev_tokens = true;
        let v = JwtVerifier::from_settings(&settings, A).unwrap();
        assert!(v.verify(&dev).is_ok());
    }

    #[test]
    fn a_cached_token_is_refused_once_expired_and_refusals_are_not_cached() {
        let v = JwtVerifier::new(Some(A), &[], "").unwrap();
        let cache = VerifiedTokens::new();
        let token = TokenMinter::new(A, "")
            .mint("a", "acme", Role::Admin, 60)
            .unwrap();
        let first = cache.verify(&v, &token).unwrap();
        let again = cache.verify(&v, &token).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "the second call is a hit");
        // The same text, now past its expiry plus leeway, as if time had passed.
        let mut expired = (*first).clone();
        expired.exp = now_secs() - LEEWAY_SECS - 1;
        cache.cache.insert(token.as_str().into(), Arc::new(expired));
        assert!(cache.verify(&v, &token).is_ok(), "re-verified, still valid");
        let stale = Claims {
            exp: now_secs() - LEEWAY_SECS - 1,
            ..(*first).clone()
        };
        let old = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &stale,
            &EncodingKey::from_secret(A),
        )
        .unwrap();
        cache.cache.insert(old.as_str().into(), Arc::new(stale));
        assert!(cache.verify(&v, &old).is_err(), "an expired hit is refused");
        assert!(cache.cache.get(old.as_str()).is_none());
        // A bad signature is refused every time and never stored.
        let forged = forged(B, Role::Admin, "acme", "", None);
        for _ in 0..2 {
            assert!(cache.verify(&v, &forged).is_err());
        }
        assert!(cache.cache.get(forged.as_str()).is_none());
    }

    #[test]
    fn short_secrets_are_refused_at_start() {
        let s = AuthSettings::default();
        assert!(check_secrets(&s, b"short").is_err());
        assert!(check_secrets(&s, A).is_ok());
        let s = AuthSettings {
            service_secret: "short".into(),
            ..AuthSettings::default()
        };
        assert!(check_secrets(&s, A).is_err());
    }
}
