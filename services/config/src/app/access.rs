//! Who is calling and what they may do.

use std::{fmt::Display, sync::Arc};

use futures::future::BoxFuture;
use salestrainer_runtime::{
    ApiError, ApiResult, Principal, Ready, Role,
    access::{Member, Memberships},
};
use sea_orm::DatabaseConnection;

use super::cache::ReadCache;

/// The caller of one request, its membership checked.
#[derive(Clone, Debug)]
pub struct Caller<'p> {
    /// A service identity: acts for any organization.
    pub service: bool,
    /// The caller's organization id (empty for services).
    pub org: &'p str,
    /// The member's role as stored (the source of truth, so a demotion takes effect at once).
    pub role: Role,
    /// Empty for services.
    pub member_id: Arc<str>,
}

impl<'p> Caller<'p> {
    /// Resolves the principal to a member of the token's organization. A subject that is not
    /// (or no longer) a member is refused even with a valid token.
    ///
    /// Wherever this service is mounted the server's auth layer asks [`StoreMemberships`],
    /// that is this service's own read cache (which every member write invalidates), and
    /// leaves the answer in the principal: it is used as it is, not looked up a second time.
    /// A principal without one (not from the auth layer) is looked up here.
    pub async fn resolve(
        db: &DatabaseConnection,
        cache: &ReadCache,
        p: &'p Principal,
    ) -> ApiResult<Self> {
        if p.is_service() {
            return Ok(Self {
                service: true,
                org: "",
                role: Role::Service,
                member_id: Arc::from(""),
            });
        }
        if let Some(member_id) = &p.member_id {
            return Ok(Self {
                service: false,
                org: &p.organization,
                role: p.role,
                member_id: Arc::clone(member_id),
            });
        }
        let member = cache
            .member_by_subject(db, &p.organization, &p.subject)
            .await?
            .ok_or_else(|| {
                ApiError::PermissionDenied(
                    "the token's subject is not a member of its organization".into(),
                )
            })?;
        Ok(Self {
            service: false,
            // The member was found by this organization id.
            org: &p.organization,
            role: member.role,
            member_id: member.id,
        })
    }

    /// Another organization's resources do not exist for this caller.
    pub fn in_org(&self, org: &str, resource: &str) -> ApiResult<()> {
        if self.service || self.org == org {
            Ok(())
        } else {
            Err(ApiError::NotFound(resource.to_owned()))
        }
    }

    /// `action` is only formatted for a refusal.
    pub fn require(&self, allowed: &[Role], action: impl Display) -> ApiResult<()> {
        if self.service || allowed.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::PermissionDenied(format!(
                "{} may not {action}",
                role_label(self.role)
            )))
        }
    }

    pub fn is_trainee(&self) -> bool {
        !self.service && self.role == Role::Trainee
    }
}

/// The memberships of this service's store, through its read cache: the auth layer's source
/// on every server config is mounted on, for all the services there (`salestrainer up`
/// included). A member write drops the cache at its commit, other replicas' writes arrive as
/// ConfigChanged events; the same answers the config client would get from ListMembers, one
/// network hop and one cache sooner.
pub struct StoreMemberships {
    pub db: Ready<DatabaseConnection>,
    pub cache: Arc<ReadCache>,
}

impl Memberships for StoreMemberships {
    fn member<'a>(
        &'a self,
        organization: &'a str,
        subject: &'a str,
    ) -> BoxFuture<'a, ApiResult<Option<Member>>> {
        Box::pin(async move {
            let db = self.db.get()?;
            self.cache
                .member_by_subject(db, organization, subject)
                .await
        })
    }

    fn cached(&self, organization: &str, subject: &str) -> Option<Option<Member>> {
        // Only members are cached: a miss (or a non-member) asks the store.
        self.cache.cached_member(organization, subject).map(Some)
    }
}

fn role_label(r: Role) -> &'static str {
    match r {
        Role::Admin => "an admin",
        Role::Manager => "a manager",
        Role::Trainee => "a trainee",
        Role::Service => "a service",
    }
}

pub const ADMIN: &[Role] = &[Role::Admin];
pub const STAFF: &[Role] = &[Role::Admin, Role::Manager];
pub const ANYONE: &[Role] = &[Role::Admin, Role::Manager, Role::Trainee];
