//! Online key rotation of every sealed column: count values per key, and re-seal them under the current
//! key in batches, resumably, while gateways keep writing.
//!
//! ## Why it is safe at every moment
//!
//! - Before it runs, every gateway holds the new secret as current and the old one as previous, so it can
//!   open values under either key, and everything it writes is under the new key.
//! - Each batch is read by keyset pagination on the primary key, re-sealed in memory (the keyring
//!   authenticates every old value before producing a new one), and written back in one transaction with a
//!   guard: a row is only replaced if it still holds the exact value that was read. A value a gateway
//!   wrote meanwhile is left alone.
//! - A row therefore only ever holds a value that opens under the keyring: the old one until the batch
//!   commits, the new one after. A killed run leaves committed batches re-sealed and the rest untouched;
//!   running again skips what is done (a value already under the current key is recognized from its
//!   header, without decrypting) and finishes the job.
//! - After a pass, another pass runs when anything was skipped or written meanwhile, until a pass finds
//!   nothing to do.

use std::collections::BTreeMap;

use futures_util::TryStreamExt as _;
use mosaic_seal::KeyId;
use uuid::Uuid;

use crate::error::{StoreError, StoreResult};
use crate::peers::{CLIENT_KEY_COLUMN, client_key_aad};
use crate::store::{Database, Store, with_db};
use crate::time::{DbTime, now};

/// How many sealed values hold what key: the answer of [`Store::sealed_value_status`], serialized as
/// `{"keys": [{"key_id", "current", "values"}], "legacy_values"}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct SealedValueStatus {
    /// One entry per key of the keyring (current first, even with no values), then any key id found in the
    /// database that the keyring does not hold.
    pub keys: Vec<KeyValueCount>,
    /// Values still in the TypeScript gateway's legacy format (which names no key).
    pub legacy_values: u64,
    /// Values that are not sealed values this build can read at all (listed only when there are some).
    #[serde(skip_serializing_if = "is_zero")]
    pub malformed_values: u64,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl SealedValueStatus {
    /// How many values are not yet v1 under the current key (what a rotation would re-seal).
    pub fn values_needing_reseal(&self) -> u64 {
        self.legacy_values
            + self
                .keys
                .iter()
                .filter(|k| !k.current)
                .map(|k| k.values)
                .sum::<u64>()
    }

    /// Every sealed value counted.
    pub fn total_values(&self) -> u64 {
        self.legacy_values + self.malformed_values + self.keys.iter().map(|k| k.values).sum::<u64>()
    }
}

/// One key's count.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct KeyValueCount {
    /// The key id (16 hex digits), as mosaic-seal prints it.
    pub key_id: String,
    /// Whether it is the keyring's current key.
    pub current: bool,
    /// How many values name it.
    pub values: u64,
    /// Whether the keyring holds it (a value under a key it does not hold cannot be opened or re-sealed).
    #[serde(skip)]
    pub in_keyring: bool,
}

/// How [`Store::rotate_sealed_values`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RotationOptions {
    /// Rows read, re-sealed and written per transaction. Default 1000.
    pub batch_size: u32,
    /// Count and check (open every value that needs it) without writing anything.
    pub dry_run: bool,
    /// Stop after this many batches (a throttled or staged rotation; run again to go on).
    pub max_batches: Option<u64>,
    /// Passes before giving up on values that keep being written under an old key. Default 5.
    pub max_passes: u32,
}

impl Default for RotationOptions {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            dry_run: false,
            max_batches: None,
            max_passes: 5,
        }
    }
}

impl RotationOptions {
    /// Sets the batch size (at least 1).
    #[must_use]
    pub fn batch_size(mut self, size: u32) -> Self {
        self.batch_size = size.max(1);
        self
    }

    /// Sets dry-run mode.
    #[must_use]
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Stops after `batches` batches.
    #[must_use]
    pub fn max_batches(mut self, batches: u64) -> Self {
        self.max_batches = Some(batches);
        self
    }
}

/// Progress of a rotation, reported after every batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct RotationProgress {
    /// 1 for the first pass over the table, 2 for the check pass, ….
    pub pass: u32,
    /// Sealed values in the table when the pass started.
    pub total: u64,
    /// Values read so far in this pass.
    pub scanned: u64,
    /// Values re-sealed and written in this pass (in a dry run: that would be).
    pub resealed: u64,
    /// Values already under the current key.
    pub already_current: u64,
    /// Values changed by someone else between read and write, left as they were.
    pub skipped_concurrent: u64,
    /// Values that could not be opened (wrong or missing key, tampered, malformed): never touched.
    pub unreadable: u64,
    /// Batches committed in this run, all passes.
    pub batches: u64,
}

/// The outcome of [`Store::rotate_sealed_values`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct RotationReport {
    /// Passes run.
    pub passes: u32,
    /// Values re-sealed, all passes (in a dry run: that would be).
    pub resealed: u64,
    /// Values found already under the current key in the first pass.
    pub already_current: u64,
    /// Values that could not be opened, with the first few rows named.
    pub unreadable: u64,
    /// Up to 10 rows that could not be opened, and why (never the value).
    pub unreadable_rows: Vec<String>,
    /// Whether it stopped at `max_batches` before finishing.
    pub stopped_early: bool,
    /// Whether nothing was written.
    pub dry_run: bool,
}

/// A sealed column: where it is and how its associated data is formed.
struct SealedColumn {
    name: &'static str,
    count: &'static str,
    scan_all: &'static str,
    first_batch: &'static str,
    next_batch: &'static str,
    pg_write_batch: &'static str,
    sqlite_write_one: &'static str,
    aad: fn(Uuid) -> String,
}

/// Every sealed column of the schema. A new one is one more entry here.
const SEALED_COLUMNS: &[SealedColumn] = &[SealedColumn {
    name: CLIENT_KEY_COLUMN,
    count: "SELECT count(*) FROM federation_peers WHERE client_key_pem IS NOT NULL",
    scan_all: "SELECT client_key_pem FROM federation_peers WHERE client_key_pem IS NOT NULL",
    first_batch: "SELECT id, client_key_pem FROM federation_peers WHERE client_key_pem IS NOT NULL \
                  ORDER BY id LIMIT $1",
    next_batch: "SELECT id, client_key_pem FROM federation_peers WHERE client_key_pem IS NOT NULL AND id > $2 \
                 ORDER BY id LIMIT $1",
    pg_write_batch: "UPDATE federation_peers AS p SET client_key_pem = u.new_value, updated_at = $4 \
                     FROM unnest($1::uuid[], $2::text[], $3::text[]) AS u(id, old_value, new_value) \
                     WHERE p.id = u.id AND p.client_key_pem = u.old_value",
    sqlite_write_one: "UPDATE federation_peers SET client_key_pem = $3, updated_at = $4 \
                       WHERE id = $1 AND client_key_pem = $2",
    aad: client_key_aad,
}];

/// One value to write back.
struct Resealed {
    id: Uuid,
    old_value: String,
    new_value: String,
}

impl Store {
    /// Counts sealed values per key id, and legacy values. Streams the table: memory does not grow with it.
    pub async fn sealed_value_status(&self) -> StoreResult<SealedValueStatus> {
        let keyring = &self.inner.keyring;
        let current = keyring.current_key_id();
        let mut counts: BTreeMap<KeyId, u64> = keyring.key_ids().map(|id| (id, 0)).collect();
        let mut legacy_values = 0u64;
        let mut malformed_values = 0u64;
        for column in SEALED_COLUMNS {
            with_db!(self.db(), pool => {
                let mut rows = sqlx::query_scalar::<_, String>(column.scan_all).fetch(pool);
                while let Some(value) = rows.try_next().await.map_err(StoreError::database("counting sealed values"))? {
                    match mosaic_seal::key_id_of(&value) {
                        Ok(Some(id)) => *counts.entry(id).or_insert(0) += 1,
                        Ok(None) => legacy_values += 1,
                        Err(_) => malformed_values += 1,
                    }
                }
            });
        }
        let mut keys: Vec<KeyValueCount> = keyring
            .key_ids()
            .map(|id| KeyValueCount {
                key_id: id.to_string(),
                current: id == current,
                values: counts.get(&id).copied().unwrap_or(0),
                in_keyring: true,
            })
            .collect();
        keys.extend(
            counts
                .iter()
                .filter(|(id, _)| !keyring.contains(**id))
                .map(|(id, values)| KeyValueCount {
                    key_id: id.to_string(),
                    current: false,
                    values: *values,
                    in_keyring: false,
                }),
        );
        Ok(SealedValueStatus {
            keys,
            legacy_values,
            malformed_values,
        })
    }

    /// Re-seals every sealed value that is not yet v1 under the keyring's current key.
    ///
    /// Batches of `options.batch_size` rows, one transaction each; safe to kill at any point and to run
    /// again; gateways may keep reading and writing. `progress` is called after every batch.
    ///
    /// # Errors
    /// Database errors stop the run (what was committed stays committed and readable).
    /// [`StoreError::RotationIncomplete`] when values were still not under the current key after
    /// `options.max_passes` passes, or some could not be opened (see the report in the log).
    pub async fn rotate_sealed_values(
        &self,
        options: RotationOptions,
        mut progress: impl FnMut(&RotationProgress),
    ) -> StoreResult<RotationReport> {
        let mut report = RotationReport {
            passes: 0,
            resealed: 0,
            already_current: 0,
            unreadable: 0,
            unreadable_rows: Vec::new(),
            stopped_early: false,
            dry_run: options.dry_run,
        };
        let mut batches = 0u64;
        let max_passes = options.max_passes.max(1);
        let mut remaining = 0u64;
        for pass in 1..=max_passes {
            report.passes = pass;
            let mut pass_progress = RotationProgress {
                pass,
                batches,
                ..RotationProgress::default()
            };
            for column in SEALED_COLUMNS {
                let stopped = self
                    .rotate_column(
                        column,
                        options,
                        &mut pass_progress,
                        &mut batches,
                        &mut report,
                        &mut progress,
                    )
                    .await?;
                if stopped {
                    report.stopped_early = true;
                    report.resealed += pass_progress.resealed;
                    return Ok(report);
                }
            }
            report.resealed += pass_progress.resealed;
            if pass == 1 {
                report.already_current = pass_progress.already_current;
                report.unreadable = pass_progress.unreadable;
            }
            // Values left behind: written meanwhile by someone else, or (dry run) not written at all.
            remaining = pass_progress.resealed + pass_progress.skipped_concurrent;
            if options.dry_run || remaining == 0 {
                remaining = 0;
                break;
            }
        }
        if remaining > 0 || report.unreadable > 0 {
            tracing::warn!(
                unreadable = report.unreadable,
                rows = ?report.unreadable_rows,
                "key rotation could not re-seal every value"
            );
            return Err(StoreError::RotationIncomplete {
                remaining: remaining + report.unreadable,
                passes: report.passes,
            });
        }
        Ok(report)
    }

    /// One pass over one column. Returns whether it stopped at `max_batches`.
    async fn rotate_column(
        &self,
        column: &SealedColumn,
        options: RotationOptions,
        pass: &mut RotationProgress,
        batches: &mut u64,
        report: &mut RotationReport,
        progress: &mut impl FnMut(&RotationProgress),
    ) -> StoreResult<bool> {
        let keyring = &self.inner.keyring;
        let total: i64 =
            with_db!(self.db(), pool => sqlx::query_scalar(column.count).fetch_one(pool).await)
                .map_err(StoreError::database("counting sealed values"))?;
        pass.total += u64::try_from(total).unwrap_or(0);
        let limit = i64::from(options.batch_size.max(1));
        let mut cursor: Option<Uuid> = None;
        loop {
            if options.max_batches.is_some_and(|max| *batches >= max) {
                return Ok(true);
            }
            let rows: Vec<(Uuid, String)> = with_db!(self.db(), pool => {
                match cursor {
                    None => sqlx::query_as(column.first_batch).bind(limit).fetch_all(pool).await,
                    Some(after) => sqlx::query_as(column.next_batch).bind(limit).bind(after).fetch_all(pool).await,
                }
            })
            .map_err(StoreError::database("reading sealed values"))?;
            let Some((last, _)) = rows.last() else { break };
            cursor = Some(*last);
            let read = rows.len();

            let mut work = Vec::with_capacity(read);
            for (id, old_value) in rows {
                pass.scanned += 1;
                match keyring.needs_reseal(&old_value) {
                    Ok(false) => {
                        pass.already_current += 1;
                        continue;
                    }
                    Ok(true) => {}
                    Err(e) => {
                        note_unreadable(pass, report, column, id, &e);
                        continue;
                    }
                }
                match keyring.reseal(&old_value, (column.aad)(id).as_bytes()) {
                    Ok(new_value) => work.push(Resealed {
                        id,
                        old_value,
                        new_value,
                    }),
                    Err(e) => note_unreadable(pass, report, column, id, &e),
                }
            }

            if options.dry_run {
                pass.resealed += work.len() as u64;
            } else if !work.is_empty() {
                let written = self.write_batch(column, &work).await?;
                pass.resealed += written;
                pass.skipped_concurrent += work.len() as u64 - written;
            }
            *batches += 1;
            pass.batches = *batches;
            progress(pass);
            if read < usize::try_from(limit).unwrap_or(usize::MAX) {
                break;
            }
        }
        Ok(false)
    }

    /// Writes one batch in one transaction; returns how many rows still held the value that was read.
    async fn write_batch(&self, column: &SealedColumn, work: &[Resealed]) -> StoreResult<u64> {
        let at = DbTime::new(now());
        match self.db() {
            Database::Postgres(pool) => {
                // One statement (its own transaction) for the whole batch: unnest zips the three arrays.
                let ids: Vec<Uuid> = work.iter().map(|w| w.id).collect();
                let old: Vec<&str> = work.iter().map(|w| w.old_value.as_str()).collect();
                let new: Vec<&str> = work.iter().map(|w| w.new_value.as_str()).collect();
                let done = sqlx::query(column.pg_write_batch)
                    .bind(ids)
                    .bind(old)
                    .bind(new)
                    .bind(at)
                    .execute(pool)
                    .await
                    .map_err(StoreError::database("writing re-sealed values"))?;
                Ok(done.rows_affected())
            }
            Database::Sqlite(pool) => {
                let mut tx = pool
                    .begin()
                    .await
                    .map_err(StoreError::database("writing re-sealed values"))?;
                let mut written = 0;
                for w in work {
                    let done = sqlx::query(column.sqlite_write_one)
                        .bind(w.id)
                        .bind(w.old_value.as_str())
                        .bind(w.new_value.as_str())
                        .bind(at)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::database("writing re-sealed values"))?;
                    written += done.rows_affected();
                }
                tx.commit()
                    .await
                    .map_err(StoreError::database("writing re-sealed values"))?;
                Ok(written)
            }
        }
    }
}

fn note_unreadable(
    pass: &mut RotationProgress,
    report: &mut RotationReport,
    column: &SealedColumn,
    id: Uuid,
    error: &mosaic_seal::SealError,
) {
    pass.unreadable += 1;
    if pass.pass == 1 && report.unreadable_rows.len() < 10 {
        report
            .unreadable_rows
            .push(format!("{} of row {id}: {error}", column.name));
    }
}
