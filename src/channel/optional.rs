//! Optional parts of what a channel sends (a translation, a country on an address): when one
//! cannot be had, it is left out and the rest goes on. Leaving it out is said once, in the sync
//! log and as a fact `status` shows under the channel, not as an error every poll; its return
//! is said once too.

use crate::store::facts;
use crate::store::Store;
use std::sync::Mutex;

/// Facts of parts left out are kept under `degraded.<channel>.<part>`.
pub const FACT_PREFIX: &str = "degraded.";

/// One optional part of one channel.
pub struct OptionalPart {
    store: Store,
    channel: &'static str,
    part: &'static str,
    /// Why the part is left out, while it is.
    why: Mutex<Option<String>>,
}

impl OptionalPart {
    /// Picks up what an earlier run recorded, so a restart does not say it again.
    pub fn new(store: &Store, channel: &'static str, part: &'static str) -> OptionalPart {
        let key = fact_key(channel, part);
        let why = facts::get(store, &key).ok().flatten().map(|(v, _)| v);
        OptionalPart {
            store: store.clone(),
            channel,
            part,
            why: Mutex::new(why),
        }
    }

    /// Why the part is left out, or `None` while it goes out.
    pub fn left_out(&self) -> Option<String> {
        self.why.lock().expect("optional part lock").clone()
    }

    /// The part cannot be had: it is left out from now on, said once per reason.
    pub fn unavailable(&self, why: &str) {
        let why = crate::secret::scrub(why);
        let mut current = self.why.lock().expect("optional part lock");
        if current.as_deref() == Some(why.as_str()) {
            return;
        }
        *current = Some(why.clone());
        drop(current);
        let _ = facts::set(&self.store, &fact_key(self.channel, self.part), &why);
        crate::internal_events::emit(
            &self.store,
            &crate::internal_events::PartOptional {
                channel: self.channel,
                part: self.part,
                left_out: Some(&why),
            },
        );
    }

    /// The part can be had again: said once if it had been left out.
    pub fn available(&self) {
        let was = self.why.lock().expect("optional part lock").take();
        if was.is_none() {
            return;
        }
        let _ = facts::remove(&self.store, &fact_key(self.channel, self.part));
        crate::internal_events::emit(
            &self.store,
            &crate::internal_events::PartOptional {
                channel: self.channel,
                part: self.part,
                left_out: None,
            },
        );
    }
}

fn fact_key(channel: &str, part: &str) -> String {
    format!("{FACT_PREFIX}{channel}.{part}")
}

/// The parts a channel leaves out now, as (part, why), for `status`.
pub fn left_out(store: &Store, channel: &str) -> crate::store::Result<Vec<(String, String)>> {
    let prefix = format!("{FACT_PREFIX}{channel}.");
    Ok(facts::with_prefix(store, &prefix)?
        .into_iter()
        .map(|(k, v)| (k[prefix.len()..].to_string(), v))
        .collect())
}
