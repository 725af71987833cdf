//! The authorization decision cache: Valkey shared by every gateway, plus an in-process layer in front of
//! it, both dropped on revocation through a Valkey pub/sub channel.
//!
//! ## Keys and the stale-write race
//!
//! A decision computed from the database just before a revocation must not be written to a cache just
//! after the revocation dropped it. Each grant has a generation counter in Valkey (`…:gen:{grant}`); entries
//! live under keys that include the generation they were computed at. Authorizing reads the generation
//! *before* reading the database; revoking commits to the database *before* incrementing the generation.
//! So a decision read from a database state older than the revocation is written under an old generation,
//! which nobody reads again. The in-process layer does the same with a local generation per grant, bumped
//! when the invalidation message arrives.
//!
//! ## When Valkey is away
//!
//! Every Valkey command has a short timeout and fails at once while disconnected, so a dead Valkey costs a
//! decision nothing but the database query (degraded mode, logged). The in-process layer is only used while
//! the subscription is live: without it this process would not hear of revocations. Invalidations that
//! could not be published are retried when Valkey comes back.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use fred::prelude::{
    ClientLike, Config, ConnectionConfig, EventInterface, Expiration, KeysInterface, Options,
    PerformanceConfig, PubsubInterface, ReconnectPolicy,
};
use fred::types::Builder;
use mosaic_oid::GrantId;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::error::{StoreError, StoreResult, redact_url};

/// The pub/sub channel carrying grant ids whose cached decisions must be dropped.
pub const INVALIDATION_CHANNEL: &str = "mosaic:authz:v1:invalidate";
const KEY_PREFIX: &str = "mosaic:authz:v1";
/// Generation counters outlive every decision (which live at most `decision_ttl`).
const GENERATION_TTL_SECS: i64 = 86_400;

/// Tuning of the authorization cache.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheSettings {
    /// How long a decision may be served from a cache (never past the grant's expiry). Default 30 s.
    pub decision_ttl: Duration,
    /// The longest a Valkey command may take before the decision is made from the database. Default 150 ms.
    pub command_timeout: Duration,
    /// The longest a connection attempt to Valkey may take. Default 500 ms.
    pub connect_timeout: Duration,
    /// The most decisions kept in process; past it the in-process layer starts over. Default 10 000.
    pub local_capacity: usize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            decision_ttl: Duration::from_secs(30),
            command_timeout: Duration::from_millis(150),
            connect_timeout: Duration::from_millis(500),
            local_capacity: 10_000,
        }
    }
}

impl CacheSettings {
    /// Sets the decision TTL.
    #[must_use]
    pub fn decision_ttl(mut self, ttl: Duration) -> Self {
        self.decision_ttl = ttl;
        self
    }

    /// Sets the Valkey command timeout.
    #[must_use]
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }
}

/// A cache key within one grant: who and which certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct DecisionKey {
    pub(crate) subject: Uuid,
    pub(crate) serial: String,
}

/// What a local insert must still match to be allowed: the state seen before the decision was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LocalTicket {
    epoch: u64,
    generation: u64,
}

#[derive(Default)]
struct LocalGrant {
    generation: u64,
    decisions: HashMap<DecisionKey, (String, Instant)>,
}

#[derive(Default)]
struct LocalState {
    /// Bumped whenever everything is dropped (lost subscription, lagging receiver, capacity).
    epoch: u64,
    entries: usize,
    grants: HashMap<Uuid, LocalGrant>,
}

/// The in-process layer.
struct LocalDecisions {
    state: Mutex<LocalState>,
    /// Whether the subscription is live, i.e. whether this process hears of revocations.
    subscribed: AtomicBool,
    capacity: usize,
}

impl LocalDecisions {
    fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(LocalState::default()),
            subscribed: AtomicBool::new(false),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, LocalState> {
        // A panic while holding the lock cannot leave the maps inconsistent in a way that matters more than
        // dropping them: start over.
        self.state.lock().unwrap_or_else(|poisoned| {
            let mut state = poisoned.into_inner();
            state.grants.clear();
            state.entries = 0;
            state.epoch += 1;
            state
        })
    }

    fn usable(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }

    fn get(&self, grant: Uuid, key: &DecisionKey) -> Option<String> {
        if !self.usable() {
            return None;
        }
        let state = self.lock();
        let (value, until) = state.grants.get(&grant)?.decisions.get(key)?;
        (Instant::now() < *until).then(|| value.clone())
    }

    fn ticket(&self, grant: Uuid) -> Option<LocalTicket> {
        if !self.usable() {
            return None;
        }
        let state = self.lock();
        Some(LocalTicket {
            epoch: state.epoch,
            generation: state.grants.get(&grant).map_or(0, |g| g.generation),
        })
    }

    fn insert(
        &self,
        grant: Uuid,
        key: DecisionKey,
        value: String,
        ttl: Duration,
        ticket: LocalTicket,
    ) {
        if !self.usable() {
            return;
        }
        let mut state = self.lock();
        let generation = state.grants.get(&grant).map_or(0, |g| g.generation);
        if state.epoch != ticket.epoch || generation != ticket.generation {
            return; // invalidated while the decision was being computed
        }
        if state.entries >= self.capacity {
            Self::clear_locked(&mut state);
            return;
        }
        let entry = state.grants.entry(grant).or_default();
        if entry
            .decisions
            .insert(key, (value, Instant::now() + ttl))
            .is_none()
        {
            state.entries += 1;
        }
    }

    fn invalidate(&self, grant: Uuid) {
        let mut state = self.lock();
        let entry = state.grants.entry(grant).or_default();
        entry.generation += 1;
        let dropped = entry.decisions.len();
        entry.decisions.clear();
        state.entries = state.entries.saturating_sub(dropped);
    }

    fn clear(&self) {
        Self::clear_locked(&mut self.lock());
    }

    fn clear_locked(state: &mut LocalState) {
        state.grants.clear();
        state.entries = 0;
        state.epoch += 1;
    }
}

/// Valkey clients and the subscription task.
struct SharedCache {
    commands: fred::clients::Client,
    subscriber: fred::clients::SubscriberClient,
    options: Options,
    local: Arc<LocalDecisions>,
    degraded: Arc<AtomicBool>,
    /// Grants whose invalidation could not be published; retried on reconnect.
    pending: Arc<Mutex<HashSet<Uuid>>>,
    tasks: Vec<JoinHandle<()>>,
    settings: CacheSettings,
}

/// The authorization cache of one [`Store`](crate::Store).
pub(crate) struct AuthzCache {
    shared: Option<SharedCache>,
}

impl fmt::Debug for AuthzCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthzCache")
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

/// A shared-cache lookup: the generation it was made at, and the entry if there was one.
pub(crate) struct SharedLookup {
    pub(crate) generation: i64,
    pub(crate) value: Option<String>,
}

fn generation_key(grant: Uuid) -> String {
    format!("{KEY_PREFIX}:gen:{grant}")
}

fn decision_key(grant: Uuid, generation: i64, key: &DecisionKey) -> String {
    format!(
        "{KEY_PREFIX}:decision:{grant}:{generation}:{}:{}",
        key.subject, key.serial
    )
}

impl AuthzCache {
    /// No cache: every decision from the database.
    pub(crate) fn database_only() -> Self {
        Self { shared: None }
    }

    /// Valkey at `url`, connected in the background. Must be called within a tokio runtime.
    pub(crate) fn with_valkey(url: &str, settings: CacheSettings) -> StoreResult<Self> {
        let mut config = Config::from_url(url).map_err(|e| StoreError::InvalidValkeyUrl {
            url: redact_url(url),
            reason: e.details().to_owned(),
        })?;
        // Keep retrying the first connection in the background instead of failing: the store works without
        // Valkey (degraded mode) and picks it up when it appears.
        config.fail_fast = false;
        let mut builder = Builder::from_config(config);
        builder
            .with_connection_config(|connection: &mut ConnectionConfig| {
                connection.connection_timeout = settings.connect_timeout;
                connection.internal_command_timeout = settings.connect_timeout;
                connection.max_command_attempts = 1;
            })
            .with_performance_config(|performance: &mut PerformanceConfig| {
                performance.default_command_timeout = settings.command_timeout;
                performance.broadcast_channel_capacity = 4096;
            })
            // Unlimited attempts, 100 ms doubling to 2 s.
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2));
        let build_error = |e: fred::error::Error| StoreError::InvalidValkeyUrl {
            url: redact_url(url),
            reason: e.details().to_owned(),
        };
        let commands = builder.build().map_err(build_error)?;
        let subscriber = builder.build_subscriber_client().map_err(build_error)?;
        let options = Options {
            timeout: Some(settings.command_timeout),
            // Answer "not connected" at once instead of queueing until a reconnection.
            fail_fast: true,
            max_attempts: Some(1),
            ..Options::default()
        };
        let local = Arc::new(LocalDecisions::new(settings.local_capacity));
        let degraded = Arc::new(AtomicBool::new(false));
        let pending = Arc::new(Mutex::new(HashSet::new()));

        let tasks = vec![
            spawn_subscription(
                subscriber.clone(),
                commands.clone(),
                options.clone(),
                Arc::clone(&local),
                Arc::clone(&pending),
            ),
            spawn_republisher(commands.clone(), options.clone(), Arc::clone(&pending)),
        ];
        // The connection tasks end when the clients quit; their handles are not needed.
        drop(commands.connect());
        drop(subscriber.connect());

        Ok(Self {
            shared: Some(SharedCache {
                commands,
                subscriber,
                options,
                local,
                degraded,
                pending,
                tasks,
                settings,
            }),
        })
    }

    pub(crate) fn is_configured(&self) -> bool {
        self.shared.is_some()
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.shared
            .as_ref()
            .is_some_and(|shared| shared.commands.is_connected())
    }

    pub(crate) fn is_subscribed(&self) -> bool {
        self.shared
            .as_ref()
            .is_some_and(|shared| shared.local.usable() && shared.subscriber.is_connected())
    }

    pub(crate) fn decision_ttl(&self) -> Option<Duration> {
        self.shared
            .as_ref()
            .map(|shared| shared.settings.decision_ttl)
    }

    pub(crate) fn local_get(&self, grant: Uuid, key: &DecisionKey) -> Option<String> {
        self.shared.as_ref()?.local.get(grant, key)
    }

    pub(crate) fn local_ticket(&self, grant: Uuid) -> Option<LocalTicket> {
        self.shared.as_ref()?.local.ticket(grant)
    }

    pub(crate) fn local_insert(
        &self,
        grant: Uuid,
        key: DecisionKey,
        value: String,
        ttl: Duration,
        ticket: Option<LocalTicket>,
    ) {
        if let (Some(shared), Some(ticket)) = (&self.shared, ticket) {
            shared.local.insert(grant, key, value, ttl, ticket);
        }
    }

    /// Reads the grant's generation and the entry under it. `None` when there is no shared cache; `Err`
    /// (already logged) when Valkey did not answer in time.
    pub(crate) async fn shared_get(
        &self,
        grant: Uuid,
        key: &DecisionKey,
    ) -> Option<Result<SharedLookup, ()>> {
        let shared = self.shared.as_ref()?;
        let result = async {
            let client = shared.commands.with_options(&shared.options);
            let generation: Option<i64> = client.get(generation_key(grant)).await?;
            let generation = generation.unwrap_or(0);
            let value: Option<String> = client.get(decision_key(grant, generation, key)).await?;
            Ok::<_, fred::error::Error>(SharedLookup { generation, value })
        }
        .await;
        Some(shared.note(result))
    }

    /// Stores a decision under the generation read before it was computed. Failures only cost a later
    /// cache miss, so they are noted and otherwise ignored.
    pub(crate) async fn shared_put(
        &self,
        grant: Uuid,
        generation: i64,
        key: &DecisionKey,
        value: String,
        ttl: Duration,
    ) {
        let Some(shared) = self.shared.as_ref() else {
            return;
        };
        let millis = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1);
        let result: Result<(), fred::error::Error> = shared
            .commands
            .with_options(&shared.options)
            .set(
                decision_key(grant, generation, key),
                value,
                Some(Expiration::PX(millis)),
                None,
                false,
            )
            .await;
        let _ = shared.note(result);
    }

    /// Drops every cached decision of these grants, here and (through Valkey) in every other process.
    pub(crate) async fn invalidate_grants(&self, grants: &[GrantId]) {
        let Some(shared) = self.shared.as_ref() else {
            return;
        };
        if grants.is_empty() {
            return;
        }
        // A process that has just started (the CLI) may not be connected yet: give the connection a moment
        // rather than leave the invalidation queued in a process about to exit.
        if !shared.commands.is_connected() {
            let _ = tokio::time::timeout(
                shared.settings.connect_timeout,
                shared.commands.wait_for_connect(),
            )
            .await;
        }
        for grant in grants {
            let grant = Uuid::from(*grant);
            shared.local.invalidate(grant);
            if let Err(e) = publish_invalidation(&shared.commands, &shared.options, grant).await {
                tracing::warn!(
                    grant = %grant,
                    error = %e,
                    "could not publish an authorization cache invalidation to Valkey; other gateways may serve \
                     a cached decision for up to the decision TTL; retrying when Valkey is back"
                );
                lock_pending(&shared.pending).insert(grant);
            }
        }
    }

    pub(crate) async fn close(&self) {
        if let Some(shared) = &self.shared {
            for task in &shared.tasks {
                task.abort();
            }
            let _ = shared.subscriber.quit().await;
            let _ = shared.commands.quit().await;
        }
    }
}

impl SharedCache {
    /// Logs transitions into and out of degraded mode.
    fn note<T>(&self, result: Result<T, fred::error::Error>) -> Result<T, ()> {
        match result {
            Ok(value) => {
                if self.degraded.swap(false, Ordering::AcqRel) {
                    tracing::info!(
                        "Valkey answers again: authorization decisions are cached again"
                    );
                }
                Ok(value)
            }
            Err(e) => {
                if !self.degraded.swap(true, Ordering::AcqRel) {
                    tracing::warn!(
                        error = %e,
                        "Valkey is unavailable: deciding authorizations from the database (degraded mode)"
                    );
                }
                Err(())
            }
        }
    }
}

impl Drop for SharedCache {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn lock_pending(pending: &Mutex<HashSet<Uuid>>) -> MutexGuard<'_, HashSet<Uuid>> {
    pending
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn publish_invalidation(
    commands: &fred::clients::Client,
    options: &Options,
    grant: Uuid,
) -> Result<(), fred::error::Error> {
    let client = commands.with_options(options);
    let key = generation_key(grant);
    let _: i64 = client.incr(&key).await?;
    let _: bool = client.expire(&key, GENERATION_TTL_SECS, None).await?;
    let _: i64 = client
        .publish(INVALIDATION_CHANNEL, grant.to_string())
        .await?;
    Ok(())
}

async fn flush_pending(
    commands: &fred::clients::Client,
    options: &Options,
    pending: &Mutex<HashSet<Uuid>>,
) {
    let grants: Vec<Uuid> = lock_pending(pending).drain().collect();
    for grant in grants {
        if publish_invalidation(commands, options, grant)
            .await
            .is_err()
        {
            lock_pending(pending).insert(grant);
        }
    }
}

/// Follows the invalidation channel: drops local decisions named by messages, and drops all of them
/// whenever the subscription may have missed messages (reconnection, lagging receiver).
fn spawn_subscription(
    subscriber: fred::clients::SubscriberClient,
    commands: fred::clients::Client,
    options: Options,
    local: Arc<LocalDecisions>,
    pending: Arc<Mutex<HashSet<Uuid>>>,
) -> JoinHandle<()> {
    // Receivers are created before `connect`, so the first connection's notification is not missed.
    let mut messages = subscriber.message_rx();
    let mut reconnects = subscriber.reconnect_rx();
    let mut errors = subscriber.error_rx();
    tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            tokio::select! {
                message = messages.recv() => match message {
                    Ok(message) => {
                        let grant = message.value.as_str().and_then(|text| Uuid::parse_str(&text).ok());
                        match grant {
                            Some(grant) => local.invalidate(grant),
                            // Not ours to understand: be safe.
                            None => local.clear(),
                        }
                    }
                    Err(RecvError::Lagged(_)) => local.clear(),
                    Err(RecvError::Closed) => break,
                },
                reconnect = reconnects.recv() => match reconnect {
                    Ok(_) | Err(RecvError::Lagged(_)) => {
                        local.subscribed.store(false, Ordering::Release);
                        local.clear();
                        match subscriber.subscribe(INVALIDATION_CHANNEL).await {
                            Ok(()) => {
                                // Anything cached before this point may have missed a message.
                                local.clear();
                                local.subscribed.store(true, Ordering::Release);
                                flush_pending(&commands, &options, &pending).await;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "could not subscribe to Valkey invalidations; \
                                    in-process authorization cache disabled until the next reconnection");
                            }
                        }
                    }
                    Err(RecvError::Closed) => break,
                },
                error = errors.recv() => match error {
                    Ok(_) | Err(RecvError::Lagged(_)) => {
                        local.subscribed.store(false, Ordering::Release);
                        local.clear();
                    }
                    Err(RecvError::Closed) => break,
                },
            }
        }
        local.subscribed.store(false, Ordering::Release);
        local.clear();
    })
}

/// Retries unpublished invalidations whenever the command connection comes back.
fn spawn_republisher(
    commands: fred::clients::Client,
    options: Options,
    pending: Arc<Mutex<HashSet<Uuid>>>,
) -> JoinHandle<()> {
    let mut reconnects = commands.reconnect_rx();
    tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        // A closed channel means the client quit: stop.
        while let Ok(_) | Err(RecvError::Lagged(_)) = reconnects.recv().await {
            flush_pending(&commands, &options, &pending).await;
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key() -> DecisionKey {
        DecisionKey {
            subject: Uuid::nil(),
            serial: "01".to_owned(),
        }
    }

    #[test]
    fn local_layer_refuses_stale_inserts_and_needs_a_subscription() {
        let local = LocalDecisions::new(100);
        let grant = Uuid::new_v4();
        assert!(
            local.ticket(grant).is_none(),
            "no subscription, no local cache"
        );
        local.subscribed.store(true, Ordering::Release);

        let ticket = local.ticket(grant).unwrap();
        local.invalidate(grant); // a revocation arrives while the decision is computed
        local.insert(
            grant,
            key(),
            "allow".to_owned(),
            Duration::from_secs(60),
            ticket,
        );
        assert_eq!(local.get(grant, &key()), None);

        let ticket = local.ticket(grant).unwrap();
        local.insert(
            grant,
            key(),
            "allow".to_owned(),
            Duration::from_secs(60),
            ticket,
        );
        assert_eq!(local.get(grant, &key()).as_deref(), Some("allow"));

        local.invalidate(grant);
        assert_eq!(local.get(grant, &key()), None);

        let ticket = local.ticket(grant).unwrap();
        local.insert(
            grant,
            key(),
            "allow".to_owned(),
            Duration::from_secs(60),
            ticket,
        );
        local.subscribed.store(false, Ordering::Release);
        assert_eq!(
            local.get(grant, &key()),
            None,
            "a lost subscription disables the layer"
        );
    }

    #[test]
    fn local_layer_expires_and_starts_over_at_capacity() {
        let local = LocalDecisions::new(1);
        local.subscribed.store(true, Ordering::Release);
        let grant = Uuid::new_v4();
        let ticket = local.ticket(grant).unwrap();
        local.insert(grant, key(), "deny".to_owned(), Duration::ZERO, ticket);
        assert_eq!(local.get(grant, &key()), None, "expired at once");

        let other = DecisionKey {
            subject: Uuid::nil(),
            serial: "02".to_owned(),
        };
        let ticket = local.ticket(grant).unwrap();
        local.insert(
            grant,
            other.clone(),
            "deny".to_owned(),
            Duration::from_secs(60),
            ticket,
        );
        assert_eq!(
            local.get(grant, &other),
            None,
            "over capacity: cleared instead of inserted"
        );
    }
}
