//! Which partitions of its partitioned categories a consumer reads (docs/contract.md section 4.6).
//!
//! One partition is read by one consumer of a group at a time, which holds the partition's lease
//! (`<prefix>:{<category>#<p>}:owner:<group>`, renewed every third of its TTL by a task of its
//! own). Each consumer keeps its membership of the group on the category alive and holds at most
//! a fair share of the partitions (the count divided by the live members, rounded up): one above
//! its share stops reading the extra partitions and gives their leases up once nothing of them is
//! held here any more; one below takes free leases. A partition taken over first has all its
//! pending entries claimed (those of a consumer that died or gave it up) before its new entries
//! are read, so entries of one partition run in stream order under each owner in turn. A consumer
//! that dies stops renewing; its leases expire and the others take its partitions.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, MutexGuard, PoisonError};
use std::time::Duration;

use redis::RedisError;
use tokio::time::Instant;

use super::Inner;
use crate::error::Error;
use crate::partitions::{check_layout, fair_share};

/// The partitions of one partitioned category.
#[derive(Debug)]
pub(super) struct Partitioned {
    /// The category.
    pub(super) category: String,
    /// The tag of each partition, `<category>#<p>`, in partition order.
    pub(super) tags: Vec<String>,
}

/// The partitions this consumer holds the leases of.
#[derive(Debug, Default)]
pub(super) struct Ownership {
    /// Tags whose streams are read here (or about to be, once taken over).
    owned: BTreeSet<String>,
    /// Tags no longer read here, whose leases are given up once nothing of them is held here,
    /// with when they stopped being read.
    releasing: BTreeMap<String, Instant>,
    /// Tags acquired whose pending entries the main loop has yet to claim.
    takeovers: Vec<String>,
}

/// The task of [`Inner::keep_leases`]; aborted when dropped, so that a consumer whose run was
/// dropped stops renewing its leases (and its partitions are taken over once they expire).
pub(super) struct LeaseTask(Option<tokio::task::JoinHandle<()>>);

impl LeaseTask {
    /// Starts renewing and taking the leases of `inner`'s partitions.
    pub(super) fn spawn(inner: Arc<Inner>) -> Self {
        Self(Some(tokio::spawn(inner.keep_leases())))
    }

    /// Stops the task and waits until it ended.
    pub(super) async fn stop(mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for LeaseTask {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

impl Inner {
    fn lock_ownership(&self) -> MutexGuard<'_, Ownership> {
        self.ownership
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The streams read now: those of the unpartitioned categories and of the partitions held.
    pub(super) fn reading(&self) -> Arc<Vec<String>> {
        self.reading
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_reading(&self, change: impl FnOnce(&mut Vec<String>)) {
        let mut reading = self.reading.lock().unwrap_or_else(PoisonError::into_inner);
        let mut streams = (**reading).clone();
        change(&mut streams);
        *reading = Arc::new(streams);
    }

    /// Checks that Redis records the partition count of every category read here, waiting for
    /// Redis while it is unreachable. False if a shutdown came first.
    pub(super) async fn check_layouts(
        &self,
        stop: &domain_events::Shutdown,
    ) -> Result<bool, Error> {
        let mut categories = self.categories.clone();
        categories.dedup();
        let mut failures = 0;
        for category in &categories {
            loop {
                match check_layout(&self.commands, &self.config, category).await {
                    Ok(checked) => {
                        checked?;
                        break;
                    }
                    Err(error) if crate::error::is_transient(&error) => {
                        failures += 1;
                        if stop
                            .sleep(crate::connection_config::reconnect_backoff(failures))
                            .await
                        {
                            return Ok(false);
                        }
                    }
                    Err(error) => return Err(self.config.error(&error)),
                }
            }
        }
        Ok(true)
    }

    /// Renews, gives up and takes partition leases until aborted, every third of the lease TTL.
    async fn keep_leases(self: Arc<Self>) {
        let interval = (self.lease_ttl / 3).max(Duration::from_millis(10));
        loop {
            if let Err(error) = self.balance().await {
                tracing::warn!(group = %self.group, consumer = %self.consumer,
                    error = %self.config.error(&error), "could not renew or take partition leases");
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// One round of [`keep_leases`](Self::keep_leases).
    async fn balance(&self) -> Result<(), RedisError> {
        for part in &self.partitioned {
            let members = self
                .leases
                .members(&self.commands, &part.category, true)
                .await?;
            let count = u32::try_from(part.tags.len()).unwrap_or(u32::MAX);
            let share = usize::try_from(fair_share(count, members)).unwrap_or(usize::MAX);
            let held: Vec<String> = {
                let ownership = self.lock_ownership();
                part.tags
                    .iter()
                    .filter(|tag| {
                        ownership.owned.contains(*tag) || ownership.releasing.contains_key(*tag)
                    })
                    .cloned()
                    .collect()
            };
            for tag in held {
                if !self.leases.lease(&self.commands, &tag).await? {
                    tracing::warn!(group = %self.group, consumer = %self.consumer, partition = %tag,
                        "lost the lease of a partition (not renewed in time?); no longer reading it");
                    self.drop_partition(&tag);
                }
            }
            let owned: Vec<String> = {
                let ownership = self.lock_ownership();
                part.tags
                    .iter()
                    .filter(|tag| ownership.owned.contains(*tag))
                    .cloned()
                    .collect()
            };
            for tag in owned.iter().skip(share) {
                tracing::debug!(group = %self.group, consumer = %self.consumer, partition = %tag,
                    members, "more partitions than a fair share: giving one up");
                self.drop_partition(tag);
                self.lock_ownership()
                    .releasing
                    .insert(tag.clone(), Instant::now());
            }
            self.finish_releases(part).await?;
            let mut have = owned.len().min(share);
            for tag in &part.tags {
                if have >= share {
                    break;
                }
                let free = {
                    let ownership = self.lock_ownership();
                    !ownership.owned.contains(tag) && !ownership.releasing.contains_key(tag)
                };
                if free && self.leases.lease(&self.commands, tag).await? {
                    tracing::debug!(group = %self.group, consumer = %self.consumer, partition = %tag,
                        members, "took a partition");
                    let mut ownership = self.lock_ownership();
                    ownership.owned.insert(tag.clone());
                    ownership.takeovers.push(tag.clone());
                    drop(ownership);
                    self.wake.notify_one();
                    have += 1;
                }
            }
        }
        Ok(())
    }

    /// Stops reading the partition of `tag` (its lease is not given up here).
    fn drop_partition(&self, tag: &str) {
        let stream = self.keys.stream(tag);
        {
            let mut ownership = self.lock_ownership();
            ownership.owned.remove(tag);
            ownership.takeovers.retain(|t| t != tag);
            ownership.releasing.remove(tag);
        }
        self.set_reading(|streams| streams.retain(|s| *s != stream));
    }

    /// Gives up the leases of the partitions of `part` being released once nothing of them is
    /// held here, and no read started before they stopped being read can still deliver.
    async fn finish_releases(&self, part: &Partitioned) -> Result<(), RedisError> {
        // A read in flight when the partition stopped being read may still return its entries.
        let settle = self.block * 2 + self.config.connection().response_timeout_value();
        let ready: Vec<String> = {
            let ownership = self.lock_ownership();
            let in_flight = self.lock_in_flight();
            ownership
                .releasing
                .iter()
                .filter(|(tag, since)| {
                    let stream = self.keys.stream(tag);
                    part.tags.contains(tag)
                        && since.elapsed() >= settle
                        && !in_flight.entries.iter().any(|(s, _)| **s == *stream)
                })
                .map(|(tag, _)| tag.clone())
                .collect()
        };
        for tag in ready {
            self.leases.release(&self.commands, &tag).await?;
            self.lock_ownership().releasing.remove(&tag);
            tracing::debug!(group = %self.group, consumer = %self.consumer, partition = %tag,
                "gave a partition up");
        }
        Ok(())
    }

    /// The partitions taken since the last call, whose pending entries are to be claimed before
    /// their streams are read.
    pub(super) fn takeovers(&self) -> Vec<String> {
        std::mem::take(&mut self.lock_ownership().takeovers)
    }

    /// Starts reading the partition of `tag` (its pending entries claimed), if still held.
    pub(super) fn start_reading(&self, tag: &str) {
        if !self.lock_ownership().owned.contains(tag) {
            return;
        }
        let stream = self.keys.stream(tag);
        self.set_reading(|streams| {
            if !streams.contains(&stream) {
                streams.push(stream);
            }
        });
    }

    /// Puts `tag` back among the takeovers (claiming its pending entries failed).
    pub(super) fn retry_takeover(&self, tag: String) {
        let mut ownership = self.lock_ownership();
        if ownership.owned.contains(&tag) {
            ownership.takeovers.push(tag);
        }
    }

    /// Gives every lease up and leaves the memberships (at shutdown, after the handlers ended).
    pub(super) async fn release_all(&self) {
        let tags: Vec<String> = {
            let mut ownership = self.lock_ownership();
            let mut tags: Vec<String> = std::mem::take(&mut ownership.owned).into_iter().collect();
            tags.extend(std::mem::take(&mut ownership.releasing).into_keys());
            ownership.takeovers.clear();
            tags
        };
        for tag in tags {
            if let Err(error) = self.leases.release(&self.commands, &tag).await {
                tracing::debug!(group = %self.group, partition = %tag, error = %self.config.error(&error),
                    "could not give a partition's lease up; it expires by itself");
            }
        }
        for part in &self.partitioned {
            if let Err(error) = self
                .leases
                .members(&self.commands, &part.category, false)
                .await
            {
                tracing::debug!(group = %self.group, category = %part.category, error = %self.config.error(&error),
                    "could not leave the group's members; the membership expires by itself");
            }
        }
    }
}
