//! Who is calling and what they may do.

use salestrainer_runtime::{ApiError, ApiResult, Principal, Role};
use sea_orm::DatabaseConnection;

use super::cache::ReadCache;

/// The caller of one request, its membership checked.
#[derive(Clone, Debug)]
pub struct Caller {
    /// A service identity: acts for any organization.
    pub service: bool,
    pub org: String,
    /// The member's role as stored (the source of truth, so a demotion takes effect at once).
    pub role: Role,
    pub member_id: String,
}

impl Caller {
    /// Resolves the principal to a member of the token's organization. A subject that is not
    /// (or no longer) a member is refused even with a valid token.
    /// The membership comes from the read cache, which every member write invalidates.
    pub async fn resolve(
        db: &DatabaseConnection,
        cache: &ReadCache,
        p: &Principal,
    ) -> ApiResult<Self> {
        if p.is_service() {
            return Ok(Self {
                service: true,
                org: String::new(),
                role: Role::Service,
                member_id: String::new(),
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
        let role = Role::parse(&member.role)
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("member has unknown role")))?;
        Ok(Self {
            service: false,
            org: member.organization_id.clone(),
            role,
            member_id: member.id.clone(),
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

    pub fn require(&self, allowed: &[Role], action: &str) -> ApiResult<()> {
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
