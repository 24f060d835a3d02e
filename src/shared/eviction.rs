//! Whether the Redis in use may evict the keys revocations live in, from its
//! `maxmemory-policy`, asked when the gateway starts and every minute after.
//!
//! The keys every replica copies revocations from (`{rev}:all`, `{rev}:log`, `{rev}:epoch`)
//! have no expiry: only an `allkeys-*` policy can take them. Each revocation's own key
//! (`{rev:<appid>}:…`) and every spent ticket id (`{once:…}`) expire, so `volatile-*` policies
//! can take those: a replica that had not yet copied the revocation (within a second of it)
//! would miss it, and a ticket could be used twice. Only `noeviction` takes nothing; anything
//! else is named in `/readyz` and the log, a warning that leaves the gateway ready (a Redis
//! under its memory limit evicts nothing, and no policy makes a replica unable to serve).

use parking_lot::Mutex;

use super::remote::Remote;

/// Whether the Redis in use may evict revocations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Eviction {
    /// Not asked yet.
    #[default]
    Unchecked,
    /// `maxmemory-policy noeviction`.
    Never,
    /// `volatile-*` (its name): keys with an expiry may go.
    ExpiringKeys(String),
    /// `allkeys-*`, or a policy this gateway does not know (its name): any key may go.
    AnyKey(String),
    /// Redis would not say (`CONFIG` disabled, renamed or not allowed to this user).
    Unknown(String),
}

impl Eviction {
    /// What Redis's `maxmemory-policy` `policy` may evict.
    pub fn of(policy: &str) -> Self {
        match policy {
            "noeviction" => Eviction::Never,
            p if p.starts_with("volatile-") => Eviction::ExpiringKeys(p.into()),
            p => Eviction::AnyKey(p.into()),
        }
    }

    /// What `/readyz` and the log say, if anything needs saying.
    pub fn warning(&self) -> Option<String> {
        const FIX: &str = "set maxmemory-policy noeviction; see README, Scaling out";
        match self {
            Eviction::Unchecked | Eviction::Never => None,
            Eviction::AnyKey(policy) => Some(format!(
                "Redis maxmemory-policy is {policy}: it may evict any key, the revocations every replica copies included ({FIX})"
            )),
            Eviction::ExpiringKeys(policy) => Some(format!(
                "Redis maxmemory-policy is {policy}: it may evict keys with an expiry, each revocation's own key (missed by a replica that had not copied it yet) and spent ticket ids (a ticket could be used twice) ({FIX})"
            )),
            Eviction::Unknown(why) => Some(format!(
                "Redis maxmemory-policy could not be checked ({why}): make sure it is noeviction"
            )),
        }
    }
}

/// Asks Redis for its eviction policy; the log says so when it changes to a worrying one.
/// Redis not answering leaves the last answer.
pub async fn check(r: &Remote, eviction: &Mutex<Eviction>) {
    let asked = r
        .run("read maxmemory-policy", |mut c| async move {
            let got = redis::cmd("CONFIG").arg("GET").arg("maxmemory-policy").query_async::<Vec<String>>(&mut c).await;
            match got {
                Ok(pairs) => Ok(Ok(pairs)),
                Err(e) if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() => Err(e),
                // A refusal (CONFIG disabled or renamed, or not allowed) is an answer here.
                Err(e) => Ok(Err(e.to_string())),
            }
        })
        .await;
    let now = match asked {
        Some(Ok(pairs)) => match pairs.get(1) {
            Some(policy) => Eviction::of(policy),
            None => Eviction::Unknown("CONFIG GET answered nothing".into()),
        },
        Some(Err(e)) => Eviction::Unknown(e),
        None => return,
    };
    let mut current = eviction.lock();
    if *current != now {
        match now.warning() {
            Some(w) => log::warn!("revocations: {w}"),
            None if *current != Eviction::Unchecked => {
                log::info!("revocations: Redis maxmemory-policy is noeviction now")
            }
            None => {}
        }
        *current = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_noeviction_keeps_every_key_and_volatile_policies_take_expiring_ones() {
        assert_eq!(Eviction::of("noeviction"), Eviction::Never);
        assert_eq!(Eviction::of("noeviction").warning(), None);
        for p in ["volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"] {
            assert_eq!(Eviction::of(p), Eviction::ExpiringKeys(p.into()));
            let w = Eviction::of(p).warning().unwrap();
            assert!(w.contains(p) && w.contains("keys with an expiry"), "{w}");
        }
        for p in ["allkeys-lru", "allkeys-lfu", "allkeys-random", "some-future-policy"] {
            assert_eq!(Eviction::of(p), Eviction::AnyKey(p.into()));
            let w = Eviction::of(p).warning().unwrap();
            assert!(w.contains(p) && w.contains("any key"), "{w}");
        }
        assert_eq!(Eviction::Unchecked.warning(), None);
        let w = Eviction::Unknown("unknown command 'CONFIG'".into()).warning().unwrap();
        assert!(w.contains("could not be checked"), "{w}");
    }
}
