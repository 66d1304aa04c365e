//! Read caches for what every request looks up: the caller's membership (each RPC) and the
//! content row a Get reads. Bounded, with a TTL, and dropped at once on a write:
//!
//! - a local write invalidates in its own write path, after its commit;
//! - other replicas' writes arrive as ConfigChanged events, which every replica follows in a
//!   consumer group of its own (the TTL bounds staleness if the bus is down).
//!
//! A read that raced a write cannot leave the old row behind: a generation counter is bumped
//! (before the entries are dropped) by every invalidation, and a read that saw it move while
//! it was at the database drops what it has just inserted.

use std::{
    any::Any,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use salestrainer_proto::events;
use salestrainer_runtime::{
    ApiError, ApiResult, Context, Role,
    access::Member,
    cache::{Pair, Triple, TtlCache},
    consumer::{self, EventHandler, Received, Subscription},
    events::TOPIC_CONFIG,
};
use sea_orm::{ConnectionTrait, DbErr};

use crate::store::{
    self, content as sc,
    entities::{member, resource},
};

/// Entries per cache.
pub const CAPACITY: usize = 10_000;
/// How long an entry is trusted when no event says otherwise (the default of
/// `[config] cache_ttl_ms`).
pub const TTL: Duration = Duration::from_secs(30);

type MemberKey = (String, String);
type ResourceKey = (String, String, String);

pub struct ReadCache {
    /// (organization, subject) → member (role and id). Only members are cached, never "not a
    /// member". Read on every user request (by the auth layer, see `access::StoreMemberships`).
    members: TtlCache<MemberKey, Member>,
    /// (organization, collection, id) → persona, scenario, rubric or assignment row, with its
    /// decoded message once a Get decoded it.
    resources: TtlCache<ResourceKey, Arc<CachedResource>>,
    generation: AtomicU64,
    /// False with a zero TTL: reads bypass the cache.
    enabled: bool,
}

impl Default for ReadCache {
    fn default() -> Self {
        Self::new(CAPACITY, TTL)
    }
}

impl ReadCache {
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            members: TtlCache::new("config_members", capacity, ttl),
            resources: TtlCache::new("config_resources", capacity, ttl),
            generation: AtomicU64::new(0),
            enabled: !ttl.is_zero(),
        }
    }

    /// The cache of the service's settings (`cache_ttl_ms`; 0 turns it off).
    pub fn with_ttl_ms(ttl_ms: u64) -> Self {
        if ttl_ms == 0 {
            tracing::info!("config read cache disabled (cache_ttl_ms = 0)");
        }
        Self::new(CAPACITY, Duration::from_millis(ttl_ms))
    }

    /// The membership of `subject` in `org` when the cache holds it (`None`: not cached, ask
    /// [`Self::member_by_subject`]). Never touches the database.
    pub fn cached_member(&self, org: &str, subject: &str) -> Option<Member> {
        if !self.enabled {
            return None;
        }
        self.members.get(&Pair(org, subject))
    }

    /// The member bound to `subject` in `org`.
    pub async fn member_by_subject<C: ConnectionTrait>(
        &self,
        conn: &C,
        org: &str,
        subject: &str,
    ) -> ApiResult<Option<Member>> {
        if !self.enabled {
            return store::organizations::member_by_subject(conn, org, subject)
                .await?
                .map(|m| member_of(&m))
                .transpose();
        }
        if let Some(m) = self.members.get(&Pair(org, subject)) {
            return Ok(Some(m));
        }
        let seen = self.generation.load(Ordering::SeqCst);
        let found = store::organizations::member_by_subject(conn, org, subject)
            .await?
            .map(|m| member_of(&m))
            .transpose()?;
        if let Some(m) = &found {
            let key = (org.to_owned(), subject.to_owned());
            self.members.insert(key, m.clone());
            if self.generation.load(Ordering::SeqCst) != seen {
                self.members.invalidate(&Pair(org, subject));
            }
        }
        Ok(found)
    }

    /// A persona, scenario, rubric or assignment row.
    pub async fn resource<C: ConnectionTrait>(
        &self,
        conn: &C,
        org: &str,
        collection: &str,
        id: &str,
    ) -> Result<Option<Arc<CachedResource>>, DbErr> {
        if !self.enabled {
            return Ok(sc::get(conn, org, collection, id)
                .await?
                .map(CachedResource::new));
        }
        if let Some(r) = self.resources.get(&Triple(org, collection, id)) {
            return Ok(Some(r));
        }
        let seen = self.generation.load(Ordering::SeqCst);
        let found = sc::get(conn, org, collection, id)
            .await?
            .map(CachedResource::new);
        if let Some(r) = &found {
            let key = (org.to_owned(), collection.to_owned(), id.to_owned());
            self.resources.insert(key, Arc::clone(r));
            if self.generation.load(Ordering::SeqCst) != seen {
                self.resources.invalidate(&Triple(org, collection, id));
            }
        }
        Ok(found)
    }

    /// A member of `org` was created, changed or removed: every cached membership of the
    /// organization goes (the key is the subject, the change names the member id).
    pub fn members_changed(&self, org: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.members.invalidate_where(|(o, _)| o == org);
    }

    /// A content row was created, changed or deleted.
    pub fn resource_changed(&self, org: &str, collection: &str, id: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.resources.invalidate(&Triple(org, collection, id));
    }

    /// Applies one ConfigChanged event (`organizations/{org}/{collection}/{id}`).
    pub fn apply(&self, event: &events::Event) {
        let Some(events::event::Payload::ConfigChanged(change)) = &event.payload else {
            return;
        };
        match changed(&change.resource) {
            Some(Changed::Members(org)) => self.members_changed(org),
            Some(Changed::Resource(org, collection, id)) => {
                self.resource_changed(org, collection, id);
            }
            None => {}
        }
    }

    /// Follows ConfigChanged events (this replica's own included, which is harmless) for as
    /// long as the context runs, in a consumer group per replica so every replica sees every
    /// change. Until the subscription succeeds only the TTL bounds staleness.
    pub fn spawn_invalidator(self: &Arc<Self>, ctx: &Context) {
        let sub = Subscription::each_replica(TOPIC_CONFIG, "config-read-cache", ctx)
            .only(&["config.changed"]);
        consumer::spawn(ctx, sub, Arc::new(Invalidator(Arc::clone(self))));
    }
}

/// A stored member as the access checks see it; a role the code does not know fails closed.
fn member_of(m: &member::Model) -> ApiResult<Member> {
    match Role::parse(&m.role) {
        Some(role) if role != Role::Service => Ok(Member {
            role,
            id: m.id.as_str().into(),
        }),
        _ => Err(ApiError::internal(anyhow::anyhow!(
            "member has unknown role"
        ))),
    }
}

/// A content row as cached, and its message once decoded: a hit then decodes nothing. The row
/// never changes once cached (a write drops the entry), so neither does the message.
pub struct CachedResource {
    pub row: resource::Model,
    decoded: OnceLock<Box<dyn Any + Send + Sync>>,
}

impl CachedResource {
    fn new(row: resource::Model) -> Arc<Self> {
        Arc::new(Self {
            row,
            decoded: OnceLock::new(),
        })
    }

    /// The row's message: a copy of the one decoded before, else `decode(row)`, kept for the
    /// next reader. A cache entry holds one collection, so one message type.
    pub fn message<K: Clone + Send + Sync + 'static>(
        &self,
        decode: impl FnOnce(&resource::Model) -> ApiResult<K>,
    ) -> ApiResult<K> {
        if let Some(k) = self.decoded.get().and_then(|d| d.downcast_ref::<K>()) {
            return Ok(k.clone());
        }
        let k = decode(&self.row)?;
        let _ = self.decoded.set(Box::new(k.clone()));
        Ok(k)
    }
}

struct Invalidator(Arc<ReadCache>);

impl EventHandler for Invalidator {
    async fn handle(&self, batch: &[Received]) -> anyhow::Result<()> {
        for r in batch {
            self.0.apply(&r.event);
        }
        Ok(())
    }
}

/// What a changed resource name means for the caches.
#[derive(Debug, PartialEq)]
enum Changed<'a> {
    Members(&'a str),
    Resource(&'a str, &'a str, &'a str),
}

fn changed(resource: &str) -> Option<Changed<'_>> {
    let mut parts = resource.split('/');
    let (Some("organizations"), Some(org), Some(collection), Some(id), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    match collection {
        "members" => Some(Changed::Members(org)),
        sc::PERSONAS | sc::SCENARIOS | sc::RUBRICS | sc::ASSIGNMENTS => {
            Some(Changed::Resource(org, collection, id))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_names_map_to_cache_entries() {
        assert_eq!(
            changed("organizations/acme/members/tom"),
            Some(Changed::Members("acme"))
        );
        assert_eq!(
            changed("organizations/acme/personas/p1"),
            Some(Changed::Resource("acme", "personas", "p1"))
        );
        assert_eq!(changed("organizations/acme"), None);
        assert_eq!(changed("organizations/acme/providerCredentials/x"), None);
        assert_eq!(changed("organizations/acme/personas/p1/extra"), None);
    }

    /// A cached membership is served until its organization's members change; then the
    /// next read sees the database.
    #[tokio::test]
    async fn a_member_change_is_seen_by_the_next_read() {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/c.db?mode=rwc", dir.path().display());
        let db = salestrainer_runtime::db::connect_and_migrate::<crate::store::Migrator>(&url)
            .await
            .unwrap();
        crate::store::ensure_organization(&db, "acme", "Acme", "alice")
            .await
            .unwrap();
        let cache = ReadCache::default();
        let m = cache.member_by_subject(&db, "acme", "alice").await.unwrap();
        assert_eq!(m.unwrap().role, Role::Admin);
        member::Entity::update_many()
            .col_expr(member::Column::Role, Expr::value("trainee"))
            .filter(member::Column::Subject.eq("alice"))
            .exec(&db)
            .await
            .unwrap();
        let m = cache.member_by_subject(&db, "acme", "alice").await.unwrap();
        assert_eq!(m.unwrap().role, Role::Admin, "served from the cache");
        assert!(cache.cached_member("acme", "alice").is_some());
        cache.members_changed("globex");
        let m = cache.member_by_subject(&db, "acme", "alice").await.unwrap();
        assert_eq!(
            m.unwrap().role,
            Role::Admin,
            "another organization's change"
        );
        cache.members_changed("acme");
        assert!(cache.cached_member("acme", "alice").is_none(), "dropped");
        let m = cache.member_by_subject(&db, "acme", "alice").await.unwrap();
        assert_eq!(m.unwrap().role, Role::Trainee);

        let off = ReadCache::new(CAPACITY, Duration::ZERO);
        assert!(
            off.member_by_subject(&db, "acme", "alice")
                .await
                .unwrap()
                .is_some()
        );
        assert!(off.members.is_empty(), "a zero TTL caches nothing");
        assert!(off.cached_member("acme", "alice").is_none());
    }
}
