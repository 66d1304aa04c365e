//! Who a caller is in their organization, decided once for every service: the role comes from
//! the caller's stored membership (the config service's answer, cached by the source and
//! dropped as soon as a ConfigChanged event arrives), never from the token's claims alone, so a
//! demotion or a removal applies everywhere at once.

use futures::future::BoxFuture;

use crate::{ApiError, ApiResult, Principal, Role};

/// Where memberships come from. Implemented by the config client (over gRPC, cached and
/// invalidated by events); the auth layer asks it for every user request.
pub trait Memberships: Send + Sync + 'static {
    /// The stored role of `subject` in `organizations/{organization}`; `None` when not a member.
    fn role<'a>(
        &'a self,
        organization: &'a str,
        subject: &'a str,
    ) -> BoxFuture<'a, ApiResult<Option<Role>>>;
}

/// The caller as the services see them: a user's role replaced by their stored one; a user
/// who is not a member of the token's organization is refused. Services pass as they are.
pub async fn resolve(source: &dyn Memberships, mut principal: Principal) -> ApiResult<Principal> {
    if principal.is_service() {
        return Ok(principal);
    }
    match source
        .role(&principal.organization, &principal.subject)
        .await?
    {
        // A stored "service" role cannot exist; refuse rather than trust it.
        Some(Role::Service) | None => Err(ApiError::PermissionDenied(format!(
            "{} is not a member of organizations/{}",
            principal.subject, principal.organization
        ))),
        Some(role) => {
            principal.role = role;
            Ok(principal)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Fixed(HashMap<(&'static str, &'static str), Role>);

    impl Memberships for Fixed {
        fn role<'a>(
            &'a self,
            organization: &'a str,
            subject: &'a str,
        ) -> BoxFuture<'a, ApiResult<Option<Role>>> {
            let role = self
                .0
                .iter()
                .find(|((o, s), _)| *o == organization && *s == subject)
                .map(|(_, r)| *r);
            Box::pin(async move { Ok(role) })
        }
    }

    fn user(subject: &str, role: Role) -> Principal {
        Principal {
            subject: subject.into(),
            organization: "acme".into(),
            role,
        }
    }

    #[tokio::test]
    async fn the_stored_role_wins_and_non_members_are_refused() {
        let source = Fixed(HashMap::from([(("acme", "dana"), Role::Trainee)]));
        // A token still saying "manager" after a demotion gets the stored role.
        let p = resolve(&source, user("dana", Role::Manager)).await.ok();
        assert_eq!(p.map(|p| p.role), Some(Role::Trainee));
        let refused = resolve(&source, user("eve", Role::Admin)).await;
        assert!(matches!(refused, Err(ApiError::PermissionDenied(_))));
        let service = Principal {
            subject: "service:call".into(),
            organization: String::new(),
            role: Role::Service,
        };
        assert!(resolve(&source, service).await.is_ok());
    }
}
