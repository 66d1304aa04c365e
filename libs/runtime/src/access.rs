//! Who a caller is in their organization, decided once for every service: the role comes from
//! the caller's stored membership (the config service's answer, cached by the source and
//! dropped as soon as a ConfigChanged event arrives), never from the token's claims alone, so a
//! demotion or a removal applies everywhere at once.

use std::{sync::Arc, time::Duration};

use futures::future::BoxFuture;
use salestrainer_proto::config as pb;
use tonic::{Code, codegen::InterceptedService, transport::Channel};

use crate::{
    ApiError, ApiResult, Context, Peer, Principal, Role,
    cache::{Pair, TtlCache},
    consumer::{self, EventHandler, Received, Subscription},
    context::ServiceAuth,
    events::TOPIC_CONFIG,
    names,
};

/// A caller's stored membership in their organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The stored role (never [`Role::Service`]).
    pub role: Role,
    /// The `{member}` of `organizations/{organization}/members/{member}`.
    pub id: Arc<str>,
}

/// Where memberships come from: the config service's own store where config is mounted (see
/// [`crate::service::Service::memberships`]), else the config client (over gRPC, cached and
/// invalidated by events). The auth layer asks it for every user request.
pub trait Memberships: Send + Sync + 'static {
    /// The stored membership of `subject` in `organizations/{organization}`; `None` when not
    /// a member.
    fn member<'a>(
        &'a self,
        organization: &'a str,
        subject: &'a str,
    ) -> BoxFuture<'a, ApiResult<Option<Member>>>;

    /// The answer when it is at hand without waiting (a cache hit): the auth layer then skips
    /// its asynchronous path. `None` means "ask [`Memberships::member`]".
    fn cached(&self, _organization: &str, _subject: &str) -> Option<Option<Member>> {
        None
    }
}

/// The caller as the services see them: a user's role replaced by their stored one; a user
/// who is not a member of the token's organization is refused. Services pass as they are.
pub async fn resolve(source: &dyn Memberships, principal: Principal) -> ApiResult<Principal> {
    if principal.is_service() {
        return Ok(principal);
    }
    let member = source
        .member(&principal.organization, &principal.subject)
        .await?;
    with_stored_member(principal, member)
}

/// A user principal with their stored role and member id (`None`: not a member, refused).
pub fn with_stored_member(
    mut principal: Principal,
    member: Option<Member>,
) -> ApiResult<Principal> {
    match member {
        // A stored "service" role cannot exist; refuse rather than trust it.
        Some(Member {
            role: Role::Service,
            ..
        })
        | None => Err(ApiError::PermissionDenied(format!(
            "{} is not a member of organizations/{}",
            principal.subject, principal.organization
        ))),
        Some(member) => {
            principal.role = member.role;
            principal.member_id = Some(member.id);
            Ok(principal)
        }
    }
}

type Client =
    pb::config_service_client::ConfigServiceClient<InterceptedService<Channel, ServiceAuth>>;

/// Memberships read from the config service (ListMembers by subject, as a service identity),
/// cached per process and dropped for an organization as soon as a ConfigChanged event for
/// one of its members (or itself) arrives; the TTL only bounds a lost event.
pub struct ConfigMemberships {
    client: Client,
    /// (organization id, subject) → stored membership; `None` caches "not a member".
    cache: TtlCache<(String, String), Option<Member>>,
}

impl ConfigMemberships {
    pub const TTL: Duration = Duration::from_secs(300);

    /// The process's source, following ConfigChanged on every replica.
    pub fn start(ctx: &Context) -> anyhow::Result<Arc<Self>> {
        let client = pb::config_service_client::ConfigServiceClient::with_interceptor(
            ctx.peer_channel(Peer::Config)?,
            ctx.service_auth("access"),
        );
        let this = Arc::new(Self {
            client,
            cache: TtlCache::new("memberships", 100_000, Self::TTL),
        });
        let sub =
            Subscription::each_replica(TOPIC_CONFIG, "memberships", ctx).only(&["config.changed"]);
        consumer::spawn(ctx, sub, Arc::new(Invalidate(this.clone())));
        Ok(this)
    }

    async fn lookup(&self, organization: &str, subject: &str) -> ApiResult<Option<Member>> {
        if let Some(hit) = self.cache.get(&Pair(organization, subject)) {
            return Ok(hit);
        }
        let answer = self
            .client
            .clone()
            .list_members(pb::ListMembersRequest {
                parent: names::organization_name(organization),
                subject: subject.to_owned(),
                page_size: 1,
                ..Default::default()
            })
            .await;
        let member = match answer {
            Ok(r) => r
                .into_inner()
                .members
                .into_iter()
                .find(|m| m.subject == subject)
                .and_then(|m| {
                    let role = match pb::Role::try_from(m.role) {
                        Ok(pb::Role::Admin) => Role::Admin,
                        Ok(pb::Role::Manager) => Role::Manager,
                        Ok(pb::Role::Trainee) => Role::Trainee,
                        _ => return None,
                    };
                    let (_, id) = names::parse_child(&m.name, "members")?;
                    Some(Member {
                        role,
                        id: id.into(),
                    })
                }),
            // An organization that does not exist has no members.
            Err(status) if status.code() == Code::NotFound => None,
            // Fail closed: no answer, no access.
            Err(status) => return Err(ApiError::from_peer(&status, "the caller's membership")),
        };
        self.cache.insert(
            (organization.to_owned(), subject.to_owned()),
            member.clone(),
        );
        Ok(member)
    }

    /// Drops what a change to `resource` may have made stale.
    pub fn invalidate(&self, resource: &str) {
        let is_organization = names::parse_organization(resource).is_some();
        if (is_organization || resource.contains("/members/"))
            && let Some(org) = names::organization_of(resource)
        {
            // Member rows are named by id, the cache by subject: drop the organization's.
            self.cache.invalidate_where(|(o, _)| o == org);
        }
    }
}

impl Memberships for ConfigMemberships {
    fn member<'a>(
        &'a self,
        organization: &'a str,
        subject: &'a str,
    ) -> BoxFuture<'a, ApiResult<Option<Member>>> {
        Box::pin(self.lookup(organization, subject))
    }

    fn cached(&self, organization: &str, subject: &str) -> Option<Option<Member>> {
        self.cache.get(&Pair(organization, subject))
    }
}

struct Invalidate(Arc<ConfigMemberships>);

impl EventHandler for Invalidate {
    async fn handle(&self, batch: &[Received]) -> anyhow::Result<()> {
        for r in batch {
            if let Some(salestrainer_proto::events::event::Payload::ConfigChanged(c)) =
                &r.event.payload
            {
                self.0.invalidate(&c.resource);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Fixed(HashMap<(&'static str, &'static str), Role>);

    impl Memberships for Fixed {
        fn member<'a>(
            &'a self,
            organization: &'a str,
            subject: &'a str,
        ) -> BoxFuture<'a, ApiResult<Option<Member>>> {
            let member = self
                .0
                .iter()
                .find(|((o, s), _)| *o == organization && *s == subject)
                .map(|((_, s), r)| Member {
                    role: *r,
                    id: format!("m-{s}").into(),
                });
            Box::pin(async move { Ok(member) })
        }
    }

    fn user(subject: &str, role: Role) -> Principal {
        Principal {
            subject: subject.into(),
            organization: "acme".into(),
            role,
            member_id: None,
        }
    }

    #[tokio::test]
    async fn the_stored_role_wins_and_non_members_are_refused() {
        let source = Fixed(HashMap::from([(("acme", "dana"), Role::Trainee)]));
        // A token still saying "manager" after a demotion gets the stored role.
        let p = resolve(&source, user("dana", Role::Manager)).await.ok();
        assert_eq!(
            p.map(|p| (p.role, p.member_id)),
            Some((Role::Trainee, Some("m-dana".into())))
        );
        let refused = resolve(&source, user("eve", Role::Admin)).await;
        assert!(matches!(refused, Err(ApiError::PermissionDenied(_))));
        let service = Principal {
            subject: "service:call".into(),
            organization: String::new(),
            role: Role::Service,
            member_id: None,
        };
        assert!(resolve(&source, service).await.is_ok());
    }
}
