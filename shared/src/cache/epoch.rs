//! The epoch, and when to replace it: whenever the server behind any slot may
//! have lost or rolled back writes since this process last looked.
//!
//! A server's identity is its `run_id` (new on every restart, including one
//! from an old snapshot). In a cluster it is the identity of the master behind
//! each slot: a failover hands a master's slots to a promoted replica, which
//! may have missed the last writes (replication is asynchronous), purges
//! included; a master back under a new `run_id` may hold an old snapshot.
//! Either way some slot's owner changes, and the epoch is replaced, which
//! orphans every entry at once (guarantee 7).

use std::sync::Arc;

use redis::{aio::ConnectionLike, RedisResult};

use super::{
    connection::RedisConn,
    fence::new_token,
    keys::KeySpace,
    slots::HASH_SLOTS,
    topology::{Master, Topology},
};

/// Keeps a process' view of the epoch, replacing the epoch when the servers
/// turn out to have changed since the last look.
#[derive(Debug, Default)]
pub struct EpochWatch {
    /// The identity last seen, encoded (see [`Owners`]).
    run_id: Option<String>,
}

/// What one look found.
#[derive(Debug)]
pub struct Synced {
    pub epoch: String,
    pub topology: Topology,
    /// Whether this look replaced the epoch (some slot changed hands).
    pub replaced: bool,
}

impl EpochWatch {
    /// Starts from an identity known from elsewhere (the invalidator's
    /// checkpoint).
    pub fn with_run_id(run_id: Option<String>) -> Self {
        Self { run_id }
    }

    /// The identity last seen: the `run_id` of a single server, or each
    /// slot range's `host:port=run_id@first-last`, comma-separated.
    pub fn run_id(&self) -> Option<&str> {
        self.run_id.as_deref()
    }

    /// Returns the current epoch (creating one if Redis has none) and the
    /// topology, replacing the epoch if any slot's server changed since this
    /// watch last looked. A cluster master that does not answer keeps its
    /// slots' last known owner, and is judged when it answers again.
    pub async fn sync_all(&mut self, conn: &mut RedisConn, keys: &KeySpace) -> RedisResult<Synced> {
        let topology = conn.topology().await?;
        let mut owners = Owners::decode(self.run_id.as_deref());
        let replaced = owners.update(&topology);
        let epoch = settle_epoch(conn, keys, replaced).await?;
        self.run_id = Some(owners.encode());
        Ok(Synced {
            epoch,
            topology,
            replaced,
        })
    }
}

/// Who served each slot when last seen.
#[derive(Debug, PartialEq)]
enum Owners {
    Unknown,
    Single(String),
    /// Per slot, `host:port=run_id`.
    Slots(Vec<Option<Arc<str>>>),
}

impl Owners {
    fn decode(encoded: Option<&str>) -> Self {
        let encoded = encoded.unwrap_or_default();
        if encoded.is_empty() {
            return Self::Unknown;
        }
        if !encoded.contains('=') {
            return Self::Single(encoded.to_owned());
        }
        let mut slots = vec![None; usize::from(HASH_SLOTS)];
        // Entries without slots (an older format) say nothing about a slot.
        for (owner, range) in encoded.split(',').filter_map(|e| e.rsplit_once('@')) {
            let Some((first, last)) = range.split_once('-') else {
                continue;
            };
            let (Ok(first), Ok(last)) = (first.parse::<usize>(), last.parse::<usize>()) else {
                continue;
            };
            let owner: Arc<str> = owner.into();
            for slot in slots.iter_mut().take(last + 1).skip(first) {
                *slot = Some(Arc::clone(&owner));
            }
        }
        Self::Slots(slots)
    }

    fn encode(&self) -> String {
        let slots = match self {
            Self::Unknown => return String::new(),
            Self::Single(id) => return id.clone(),
            Self::Slots(slots) => slots,
        };
        let mut entries = Vec::new();
        let mut slot = 0;
        while slot < slots.len() {
            let owner = &slots[slot];
            let run = slots[slot..].iter().take_while(|o| *o == owner).count();
            if let Some(owner) = owner {
                entries.push(format!("{owner}@{slot}-{}", slot + run - 1));
            }
            slot += run;
        }
        entries.join(",")
    }

    /// Records what `topology` shows; true if a slot changed hands.
    fn update(&mut self, topology: &Topology) -> bool {
        if let [Master {
            node: None,
            run_id: Some(id),
            ..
        }] = topology.masters.as_slice()
        {
            let changed = match self {
                Self::Unknown => false,
                Self::Single(seen) => seen != id,
                Self::Slots(_) => true,
            };
            *self = Self::Single(id.clone());
            return changed;
        }
        let (mut changed, mut slots) = match std::mem::replace(self, Self::Unknown) {
            Self::Slots(slots) => (false, slots),
            Self::Unknown => (false, vec![None; usize::from(HASH_SLOTS)]),
            Self::Single(_) => (true, vec![None; usize::from(HASH_SLOTS)]),
        };
        for master in &topology.masters {
            let Some(run_id) = &master.run_id else {
                continue;
            };
            let owner: Arc<str> = format!("{}={run_id}", master.address()).into();
            for range in &master.slots {
                let range = usize::from(*range.start())..=usize::from(*range.end());
                for slot in slots.get_mut(range).into_iter().flatten() {
                    changed |= slot.as_ref().is_some_and(|seen| *seen != owner);
                    *slot = Some(Arc::clone(&owner));
                }
            }
        }
        *self = Self::Slots(slots);
        changed
    }
}

/// The epoch to use: a fresh one after a change, else the existing one (or
/// ours if there was none).
async fn settle_epoch<C: ConnectionLike>(
    conn: &mut C,
    keys: &KeySpace,
    replace: bool,
) -> RedisResult<String> {
    let fresh = new_token();
    if replace {
        tracing::warn!("Redis restarted or failed over since last seen; replacing the cache epoch");
        redis::cmd("SET")
            .arg(keys.epoch())
            .arg(&fresh)
            .query_async::<()>(conn)
            .await?;
        return Ok(fresh);
    }
    // SET NX GET: the existing epoch, or ours if there was none.
    let previous: Option<String> = redis::cmd("SET")
        .arg(keys.epoch())
        .arg(&fresh)
        .arg("NX")
        .arg("GET")
        .query_async(conn)
        .await?;
    Ok(previous.unwrap_or(fresh))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master(port: u16, slots: &[(u16, u16)], run_id: Option<&str>) -> Master {
        Master {
            node: Some(("h".to_owned(), port)),
            slots: slots.iter().map(|(a, b)| *a..=*b).collect(),
            run_id: run_id.map(str::to_owned),
        }
    }

    fn cluster(masters: Vec<Master>) -> Topology {
        Topology { masters }
    }

    #[test]
    fn a_single_server_is_its_run_id() {
        let mut owners = Owners::decode(None);
        let single = |id: &str| Topology {
            masters: vec![Master {
                node: None,
                slots: vec![0..=HASH_SLOTS - 1],
                run_id: Some(id.to_owned()),
            }],
        };
        assert!(!owners.update(&single("a")), "first sight");
        assert_eq!(owners.encode(), "a");
        let mut again = Owners::decode(Some("a"));
        assert!(!again.update(&single("a")));
        assert!(again.update(&single("b")), "restarted");
    }

    #[test]
    fn a_slot_changing_hands_is_a_change_and_a_silent_master_is_not() {
        let mut owners = Owners::decode(None);
        let layout = cluster(vec![
            master(1, &[(0, 8000)], Some("a")),
            master(2, &[(8001, 16383)], Some("b")),
        ]);
        assert!(!owners.update(&layout));
        let encoded = owners.encode();
        assert_eq!(encoded, "h:1=a@0-8000,h:2=b@8001-16383");
        let mut owners = Owners::decode(Some(&encoded));
        assert_eq!(owners.encode(), encoded, "round trip");
        assert!(!owners.update(&layout), "same servers");

        // Master 2 does not answer: nothing is judged, nothing forgotten.
        let silent = cluster(vec![
            master(1, &[(0, 8000)], Some("a")),
            master(2, &[(8001, 16383)], None),
        ]);
        assert!(!owners.update(&silent));
        assert_eq!(owners.encode(), encoded);

        // Its replica took over its slots: they changed hands.
        let failed_over = cluster(vec![
            master(1, &[(0, 8000)], Some("a")),
            master(3, &[(8001, 16383)], Some("c")),
        ]);
        assert!(owners.update(&failed_over));
        assert!(!owners.update(&failed_over), "judged once");

        // Back to the old master under its old run_id: a change all the same
        // (it was a replica meanwhile and may have missed writes).
        assert!(owners.update(&layout));

        // An older encoding without slots knows nothing: no change.
        let mut old = Owners::decode(Some("h:1=a,h:2=zz"));
        assert!(!old.update(&layout));
    }
}

#[cfg(test)]
mod cluster_tests {
    use std::time::Duration;

    use redis::aio::ConnectionManagerConfig;

    use super::*;
    use test_support::{wait_until, PrivateRedisCluster};

    use crate::cache::{ReadScript, RedisTarget, Scope};

    #[tokio::test]
    async fn every_master_is_watched_and_a_stopped_one_blinds_nothing() {
        let mut cluster = PrivateRedisCluster::start().await.unwrap();
        let timeout = Duration::from_millis(200);
        let target = RedisTarget::open(&cluster.url(), timeout, timeout).unwrap();
        assert!(target.is_cluster());
        let mut conn = target
            .connect(ConnectionManagerConfig::new())
            .await
            .unwrap();
        let keys = KeySpace::new("t:").unwrap();
        let topology = conn.topology().await.unwrap();
        assert_eq!(topology.masters.len(), PrivateRedisCluster::MASTERS);
        assert!(topology.masters.iter().all(|m| m.run_id.is_some()));
        let mut watch = EpochWatch::default();
        let epoch = watch.sync_all(&mut conn, &keys).await.unwrap().epoch;
        assert_eq!(watch.sync_all(&mut conn, &keys).await.unwrap().epoch, epoch);

        // Scopes on every master purge in one call.
        let scopes: Vec<Scope> = (0..20).map(|i| Scope::Tag(format!("t{i}"))).collect();
        conn.purge(&keys, &scopes).await.unwrap();

        let epoch_master = cluster.master_of(&keys.epoch()).await.unwrap();
        let victim = (epoch_master + 1) % PrivateRedisCluster::MASTERS;
        cluster.stop(victim).await.unwrap();
        // The others still answer: the epoch stays, nothing is replaced.
        let probe = conn.clone();
        let synced = |expect_same: bool| {
            let (conn, seen, keys, epoch) = (
                probe.clone(),
                watch.run_id().map(str::to_owned),
                keys.clone(),
                epoch.clone(),
            );
            move || {
                let (mut conn, mut watch, keys, epoch) = (
                    conn.clone(),
                    EpochWatch::with_run_id(seen.clone()),
                    keys.clone(),
                    epoch.clone(),
                );
                async move {
                    watch
                        .sync_all(&mut conn, &keys)
                        .await
                        .is_ok_and(|s| (s.epoch == epoch) == expect_same)
                }
            }
        };
        let kept = wait_until(Duration::from_secs(10), synced(true)).await;
        assert!(kept, "a stopped master must not replace or hide the epoch");

        // A purge with a master down fails, but purges every other master's scopes.
        let mut healthy_scopes = Vec::new();
        for scope in &scopes {
            if cluster.master_of(&keys.generation(scope)).await.unwrap() != victim {
                let generation: Option<String> = redis::cmd("GET")
                    .arg(keys.generation(scope))
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                healthy_scopes.push((scope.clone(), generation.unwrap()));
            }
        }
        assert!(conn.purge(&keys, &scopes).await.is_err());
        for (scope, before) in &healthy_scopes {
            let after: Option<String> = redis::cmd("GET")
                .arg(keys.generation(scope))
                .query_async(&mut conn)
                .await
                .unwrap();
            assert_ne!(after.as_ref(), Some(before), "{scope} not purged");
        }

        // A node that lacks the read script (restarted, flushed) still serves
        // reads while another master is down (SCRIPT LOAD would go to all).
        let healthy = epoch_master;
        let mut node = redis::Client::open(cluster.urls()[healthy].as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut node)
            .await
            .unwrap();
        let mut on_healthy = None;
        for scope in &scopes {
            if cluster.master_of(&keys.generation(scope)).await.unwrap() == healthy {
                on_healthy = Some(scope.clone());
                break;
            }
        }
        let scope = on_healthy.unwrap();
        let (generation, entry) = ReadScript::default()
            .run(&mut conn, &keys, &scope, &epoch, "r")
            .await
            .unwrap();
        assert!(entry.is_none() && !generation.is_empty());

        cluster.restart(victim).await.unwrap();
        let replaced = wait_until(Duration::from_secs(10), synced(false)).await;
        assert!(
            replaced,
            "a master back under a new run_id replaces the epoch"
        );
    }
}
