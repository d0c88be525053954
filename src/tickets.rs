//! Tickets: what a browser puts in a `WebSocket`/`EventSource` URL instead of its JWT.
//!
//! A ticket is 128 random bits, single use, lives for seconds (never longer than the token it was
//! bought with) and carries the token's subject and expiry. The store is in this process, bounded
//! in number, or in Redis (`SET PX` / `GETDEL`) so that a ticket bought from one instance opens a
//! connection on any other and a load balancer needs no sticky sessions.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::{
    auth::{AuthError, Principal},
    broker::redis::{Link, LinkError},
};

/// Where tickets wait to be redeemed.
#[derive(Debug)]
pub(crate) struct Tickets {
    ttl: Duration,
    store: Store,
}

#[derive(Debug)]
enum Store {
    Memory(MemoryTickets),
    Redis(Link),
}

impl Tickets {
    /// In this process, at most `capacity` pending at once.
    pub(crate) fn memory(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            store: Store::Memory(MemoryTickets {
                pending: Mutex::new(HashMap::new()),
                capacity,
            }),
        }
    }

    /// In Redis, shared by every instance; bounded by their TTLs.
    pub(crate) fn redis(ttl: Duration, link: Link) -> Self {
        Self {
            ttl,
            store: Store::Redis(link),
        }
    }

    /// Issues a ticket for a token with `token_left` before its `exp`; returns it with its life:
    /// the configured TTL, or less when the token expires sooner. A token accepted only within
    /// the leeway (its `exp` has just passed) still gets a second to connect, never past the
    /// leeway.
    pub(crate) async fn issue(
        &self,
        principal: Principal,
        token_left: Duration,
    ) -> Result<(String, Duration), AuthError> {
        const LEAST: Duration = Duration::from_secs(1);
        let life = self
            .ttl
            .min(token_left)
            .max(LEAST.min(principal.remaining()));
        let ticket = format!("{:032x}", rand::random::<u128>());
        match &self.store {
            Store::Memory(memory) => memory.issue(&ticket, principal, life)?,
            Store::Redis(link) => put(link, &ticket, &principal, life)
                .await
                .map_err(|_| AuthError::TicketStoreUnavailable)?,
        }
        Ok((ticket, life))
    }

    /// Takes a ticket out: whoever redeems it first gets its principal, once.
    pub(crate) async fn redeem(&self, ticket: &str) -> Result<Principal, AuthError> {
        match &self.store {
            Store::Memory(memory) => memory.redeem(ticket),
            Store::Redis(link) => take(link, ticket)
                .await
                .map_err(|_| AuthError::TicketStoreUnavailable)?
                .ok_or(AuthError::InvalidTicket),
        }
    }
}

/// Single-use tickets in this process; expired ones are swept whenever a new one would not fit.
#[derive(Debug)]
struct MemoryTickets {
    pending: Mutex<HashMap<String, (Principal, Instant)>>,
    capacity: usize,
}

impl MemoryTickets {
    fn issue(&self, ticket: &str, principal: Principal, life: Duration) -> Result<(), AuthError> {
        let expires = Instant::now() + life;
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.len() >= self.capacity {
            let now = Instant::now();
            pending.retain(|_, (_, expires)| *expires > now);
            if pending.len() >= self.capacity {
                return Err(AuthError::TicketsExhausted);
            }
        }
        pending.insert(ticket.to_owned(), (principal, expires));
        Ok(())
    }

    fn redeem(&self, ticket: &str) -> Result<Principal, AuthError> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        match pending.remove(ticket) {
            Some((principal, expires)) if expires > Instant::now() => Ok(principal),
            _ => Err(AuthError::InvalidTicket),
        }
    }
}

/// `SET <stream_key>:ticket:<ticket> <principal as JSON> PX <life>`.
async fn put(
    link: &Link,
    ticket: &str,
    principal: &Principal,
    life: Duration,
) -> Result<(), LinkError> {
    let value = serde_json::to_string(principal)
        .map_err(|e| LinkError::Unavailable(format!("ticket value: {e}")))?;
    let life = life.max(Duration::from_millis(1)).as_millis() as u64;
    link.call::<redis::Value, _>(|_| {
        let mut set = redis::cmd("SET");
        set.arg(link.key("ticket", ticket))
            .arg(&value)
            .arg("PX")
            .arg(life);
        set
    })
    .await
    .map(drop)
}

/// `GETDEL`, so two instances can never both redeem one ticket. `None`: unknown, used or expired
/// (or a value that is not ours).
async fn take(link: &Link, ticket: &str) -> Result<Option<Principal>, LinkError> {
    let value: Option<String> = link
        .call(|_| {
            let mut getdel = redis::cmd("GETDEL");
            getdel.arg(link.key("ticket", ticket));
            getdel
        })
        .await?;
    Ok(value.as_deref().and_then(stored_principal))
}

/// A ticket's stored principal: JSON, or `<valid_until>:<actor_id>` as instances before names
/// stored it (during a rolling upgrade, one may issue and another redeem).
fn stored_principal(value: &str) -> Option<Principal> {
    serde_json::from_str(value).ok().or_else(|| {
        let (valid_until, actor_id) = value.split_once(':')?;
        Some(Principal {
            actor_id: actor_id.to_owned(),
            name: None,
            valid_until: valid_until.parse().ok()?,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_principal_is_read_in_either_format() {
        let json = r#"{"actor_id":"user_1","name":"Anna","valid_until":42}"#;
        let read = stored_principal(json).expect("json");
        assert_eq!(
            (
                read.actor_id.as_str(),
                read.name.as_deref(),
                read.valid_until
            ),
            ("user_1", Some("Anna"), 42)
        );
        let read = stored_principal("42:user:1").expect("the earlier format");
        assert_eq!(
            (read.actor_id.as_str(), read.name, read.valid_until),
            ("user:1", None, 42)
        );
        assert!(stored_principal("garbage").is_none());
    }
    use crate::auth::unix_now;

    const HOUR: Duration = Duration::from_secs(3600);

    fn principal(secs: u64) -> Principal {
        Principal {
            actor_id: "user_1".into(),
            name: None,
            valid_until: unix_now() + secs,
        }
    }

    #[tokio::test]
    async fn a_ticket_is_good_exactly_once() {
        let tickets = Tickets::memory(Duration::from_secs(30), 10);
        let (ticket, _) = tickets.issue(principal(60), HOUR).await.expect("room");
        assert_eq!(ticket.len(), 32, "128 bits in hex");
        assert_eq!(
            tickets.redeem(&ticket).await.expect("first use").actor_id,
            "user_1"
        );
        assert!(matches!(
            tickets.redeem(&ticket).await,
            Err(AuthError::InvalidTicket)
        ));
    }

    #[tokio::test]
    async fn the_ticket_store_is_bounded() {
        let tickets = Tickets::memory(Duration::from_secs(30), 2);
        tickets.issue(principal(60), HOUR).await.expect("room");
        tickets.issue(principal(60), HOUR).await.expect("room");
        assert!(matches!(
            tickets.issue(principal(60), HOUR).await,
            Err(AuthError::TicketsExhausted)
        ));
    }

    #[tokio::test]
    async fn a_ticket_lives_until_its_token_expires_at_most() {
        let tickets = Tickets::memory(Duration::from_secs(30), 10);
        let life = |secs: f64, leeway: u64| {
            let tickets = &tickets;
            async move {
                let (_, life) = tickets
                    .issue(principal(leeway), Duration::from_secs_f64(secs))
                    .await
                    .expect("room");
                life
            }
        };
        assert_eq!(life(3600.0, 3630).await, Duration::from_secs(30));
        assert_eq!(life(4.5, 34).await, Duration::from_secs_f64(4.5));
        // Past `exp`, within the leeway: a second to connect, never past the leeway.
        assert_eq!(life(0.0, 20).await, Duration::from_secs(1));
        assert_eq!(life(0.0, 0).await, Duration::ZERO);
    }

    #[tokio::test]
    async fn a_ticket_is_not_redeemed_after_its_life() {
        let tickets = Tickets::memory(Duration::from_secs(30), 10);
        let (ticket, _) = tickets
            .issue(principal(0), Duration::ZERO)
            .await
            .expect("room");
        assert!(matches!(
            tickets.redeem(&ticket).await,
            Err(AuthError::InvalidTicket)
        ));
    }
}
