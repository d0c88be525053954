//! An open connection, whichever kind of Redis it reaches, behind one type: the writer and the
//! reader run the same commands on a single server (or a Sentinel's master) and on a Cluster.

use redis::{
    RedisFuture, Value,
    aio::{ConnectionLike, MultiplexedConnection},
    cluster_async::ClusterConnection,
};

/// An open connection, whichever kind; cheap to clone (both kinds multiplex).
#[derive(Clone)]
pub(crate) enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conn::Single(_) => "Conn::Single",
            Conn::Cluster(_) => "Conn::Cluster",
        })
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// `INFO` on the node that holds `KEYS[1]`.
const MASTER_INFO: &str = "return redis.call('INFO')";

impl Conn {
    /// Whether the connection moves to a new master by itself (a cluster's does, following the
    /// slot), so that a failover can happen without the connection failing.
    pub(crate) fn follows_failovers(&self) -> bool {
        matches!(self, Conn::Cluster(_))
    }

    /// The replication history of the master that holds `key` (`INFO`'s default sections, which
    /// hold `server` and `replication` on every version), asked by a script on `key`: in a
    /// cluster it runs on whichever node holds the key's slot, and a node that does not answers
    /// `MOVED`, which the cluster connection follows. A plain `INFO` routed to the slot's master
    /// went to some other node while the connection had none to that master (right after a
    /// failover, the old one gone), and that node's id read as yet another failover.
    pub(crate) async fn master_of(&mut self, key: &str) -> redis::RedisResult<History> {
        let info: redis::InfoDict = redis::cmd("EVAL")
            .arg(MASTER_INFO)
            .arg(1)
            .arg(key)
            .query_async(self)
            .await?;
        // During a failover the node that answers for the slot may still be a replica, whose
        // id is about to change again: only a master's id is one to follow.
        if info.get::<String>("role").as_deref() != Some("master") {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "the stream's node is not a master (yet)",
            )));
        }
        let field = |name: &str| info.get::<String>(name).unwrap_or_default();
        Ok(History {
            server: field("run_id"),
            id: field("master_replid"),
            promoted_from: field("master_replid2"),
        })
    }
}

/// What a master says of its replication history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct History {
    /// `run_id`: which server process this is (a restart is a new one).
    pub(crate) server: String,
    /// `master_replid`: a replica promoted to master, and a server (re)started, begin a new one,
    /// so a new id means a failover or a restart, which may have lost acknowledged appends.
    pub(crate) id: String,
    /// `master_replid2`: for a promoted replica, the id of the master it replicated before (its
    /// history goes on from that one's); otherwise a string of zeros. A master also begins a new
    /// id, with this one zeros, when its first replica attaches and it has no replication backlog
    /// yet: a promoted replica does that when the old master comes back as its replica.
    pub(crate) promoted_from: String,
}
