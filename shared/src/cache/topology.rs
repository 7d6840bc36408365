//! Which servers hold the cache: the single server, or every cluster master
//! with its slot ranges, each with the `run_id` of its current run (it changes
//! on every restart, including one that loads an old snapshot).

use std::ops::RangeInclusive;

use redis::{
    aio::ConnectionLike,
    cluster_async::ClusterConnection,
    cluster_routing::{RoutingInfo, SingleNodeRoutingInfo},
    FromRedisValue, RedisResult, Value,
};

use super::{
    connection::{bounded, RedisConn},
    slots::HASH_SLOTS,
};

/// One server holding cache keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Master {
    /// Host and port of a cluster master; `None` for a single server.
    pub node: Option<(String, u16)>,
    /// The slots it serves (all of them, for a single server).
    pub slots: Vec<RangeInclusive<u16>>,
    /// Its `run_id`, or `None` if it did not answer.
    pub run_id: Option<String>,
}

impl Master {
    /// `host:port`, or `""` for a single server.
    pub fn address(&self) -> String {
        self.node
            .as_ref()
            .map(|(host, port)| format!("{host}:{port}"))
            .unwrap_or_default()
    }
}

/// The masters as one look found them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    pub masters: Vec<Master>,
}

impl Topology {
    /// Whether both name the same masters serving the same slots (whether
    /// each answered aside).
    pub fn same_layout(&self, other: &Self) -> bool {
        self.masters.len() == other.masters.len()
            && self
                .masters
                .iter()
                .zip(&other.masters)
                .all(|(a, b)| a.node == b.node && a.slots == b.slots)
    }
}

impl RedisConn {
    /// The masters, their slots and their `run_id`s. A cluster master that
    /// does not answer is listed without one, so that one stopped master does
    /// not blind the restart check for the others; an error only if none
    /// answers.
    pub async fn topology(&mut self) -> RedisResult<Topology> {
        let (conn, node_timeout) = match self {
            Self::Single(conn) => {
                let run_id = redis_run_id(conn).await?;
                return Ok(Topology {
                    masters: vec![Master {
                        node: None,
                        slots: vec![0..=HASH_SLOTS - 1],
                        run_id: Some(run_id),
                    }],
                });
            }
            Self::Cluster { conn, node_timeout } => (conn, *node_timeout),
        };
        let masters = cluster_masters(conn, node_timeout).await?;
        let infos = masters.into_iter().map(|mut master| {
            let mut conn = conn.clone();
            async move {
                let Some((host, port)) = master.node.clone() else {
                    return (master, None);
                };
                let routing =
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
                let info = bounded(
                    node_timeout,
                    conn.route_command(redis::cmd("INFO").arg("server"), routing),
                )
                .await
                .and_then(|v| String::from_redis_value(&v))
                .and_then(|info| parse_run_id(&info));
                match info {
                    Ok(id) => {
                        master.run_id = Some(id);
                        (master, None)
                    }
                    Err(error) => {
                        let address = master.address();
                        tracing::debug!(%address, %error, "Redis master did not report its run_id");
                        (master, Some(error))
                    }
                }
            }
        });
        let mut found = Topology::default();
        let mut last_error = None;
        for (master, error) in futures::future::join_all(infos).await {
            last_error = error.or(last_error);
            found.masters.push(master);
        }
        match last_error {
            Some(error) if found.masters.iter().all(|m| m.run_id.is_none()) => Err(error),
            _ => Ok(found),
        }
    }
}

/// The masters and their slots, from `CLUSTER SLOTS` of whichever node
/// answers (a few tries: the random node may be the stopped one), in the
/// order of their first slot.
async fn cluster_masters(
    conn: &mut ClusterConnection,
    node_timeout: std::time::Duration,
) -> RedisResult<Vec<Master>> {
    let mut attempt = 0;
    let mut cluster_slots = redis::cmd("CLUSTER");
    cluster_slots.arg("SLOTS");
    let slots = loop {
        attempt += 1;
        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random);
        let slots = bounded(node_timeout, conn.route_command(&cluster_slots, routing));
        match slots.await {
            Ok(slots) => break slots,
            Err(error) if attempt >= 3 => return Err(error),
            Err(_) => {}
        }
    };
    // Each range: [start, end, [host, port, id, ...], replicas...].
    let mut ranges: Vec<Vec<Value>> = FromRedisValue::from_redis_value(&slots)?;
    ranges.sort_by_key(|range| {
        range
            .first()
            .and_then(|start| u16::from_redis_value(start).ok())
    });
    let mut masters: Vec<Master> = Vec::new();
    for range in ranges {
        let (Some(start), Some(end), Some(master)) = (range.first(), range.get(1), range.get(2))
        else {
            continue;
        };
        let slots = u16::from_redis_value(start)?..=u16::from_redis_value(end)?;
        let node: Vec<Value> = FromRedisValue::from_redis_value(master)?;
        let (Some(host), Some(port)) = (node.first(), node.get(1)) else {
            continue;
        };
        let node = (
            String::from_redis_value(host)?,
            u16::from_redis_value(port)?,
        );
        match masters.iter_mut().find(|m| m.node.as_ref() == Some(&node)) {
            Some(known) => known.slots.push(slots),
            None => masters.push(Master {
                node: Some(node),
                slots: vec![slots],
                run_id: None,
            }),
        }
    }
    Ok(masters)
}

/// The Redis server's `run_id`.
pub async fn redis_run_id<C: ConnectionLike>(conn: &mut C) -> RedisResult<String> {
    let info: String = redis::cmd("INFO").arg("server").query_async(conn).await?;
    parse_run_id(&info)
}

fn parse_run_id(info: &str) -> RedisResult<String> {
    info.lines()
        .find_map(|l| l.strip_prefix("run_id:"))
        .map(|id| id.trim().to_owned())
        .ok_or_else(|| {
            redis::RedisError::from((redis::ErrorKind::ResponseError, "INFO server has no run_id"))
        })
}
