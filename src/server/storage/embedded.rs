//! The embedded store: one redb file for a single meta node that needs no etcd. redb locks the
//! file, so a second server on the same data dir is refused. Its own leadership term is kept in
//! the same file and grows on every start, so that batches of an earlier run never match.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::load::{LoadCause, LoadError};
use crate::core::storage::{
    Op, Snapshot, SnapshotLoader, WriteBatch, WriteResult, FENCE_KEY, SNAPSHOT_PREFIXES,
};
use crate::core::Term;

const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const TERM_KEY: &str = "term";

/// redb's page cache. Its default (1 GiB) would sit in the leader's memory beside the catalog,
/// which already holds every record; new records are appended at the right edge of the tree,
/// so a small cache serves writes, and a load reads each page once.
pub const EMBEDDED_CACHE_BYTES: usize = 64 << 20;

pub struct EmbeddedStore {
    db: Arc<Database>,
    term: Term,
    path: PathBuf,
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `dir` and starts a new term.
    pub fn open(dir: &Path) -> Result<EmbeddedStore, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create data dir {}: {e}", dir.display()))?;
        let path = dir.join("meta.redb");
        let db = Database::builder().set_cache_size(EMBEDDED_CACHE_BYTES).create(&path).map_err(
            |e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => {
                    format!(
                        "data dir {} is in use by another meta-server (its database is locked)",
                        dir.display()
                    )
                }
                other => format!("cannot open {}: {other}", path.display()),
            },
        )?;
        let term = {
            let tx = db.begin_write().map_err(|e| e.to_string())?;
            let term = {
                let mut meta = tx.open_table(META).map_err(|e| e.to_string())?;
                let term =
                    meta.get(TERM_KEY).map_err(|e| e.to_string())?.map_or(0, |v| v.value()) + 1;
                meta.insert(TERM_KEY, term).map_err(|e| e.to_string())?;
                term
            };
            tx.open_table(KV).map_err(|e| e.to_string())?;
            tx.commit().map_err(|e| e.to_string())?;
            Term(term)
        };
        Ok(EmbeddedStore { db: Arc::new(db), term, path })
    }

    /// The term this run holds; it is the only leader there is.
    pub fn term(&self) -> Term {
        self.term
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub async fn write(&self, batch: &WriteBatch) -> WriteResult {
        let (db, batch, term) = (self.db.clone(), batch.clone(), self.term);
        // redb blocks on fsync: keep it off the async workers.
        match blocking(move || write_blocking(&db, &batch, term)).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "embedded store write failed");
                WriteResult::Error
            }
            Err(e) => {
                tracing::error!(error = %e, "embedded store write task failed");
                WriteResult::Error
            }
        }
    }

    /// Reads every snapshot range in one read transaction (one point in time), decoding each
    /// record into the catalog as it is read.
    pub async fn snapshot(&self) -> Result<Snapshot, LoadError> {
        let (db, started) = (self.db.clone(), std::time::Instant::now());
        let unavailable = |e: redb::Error| LoadError::new(LoadCause::Unavailable, e.to_string());
        blocking(move || {
            let tx = db.begin_read().map_err(|e| unavailable(e.into()))?;
            let table = tx.open_table(KV).map_err(|e| unavailable(e.into()))?;
            let mut loader = SnapshotLoader::default();
            for prefix in SNAPSHOT_PREFIXES {
                for entry in table.range(prefix..).map_err(|e| unavailable(e.into()))? {
                    let (k, v) = entry.map_err(|e| unavailable(e.into()))?;
                    if !k.value().starts_with(prefix) {
                        break;
                    }
                    loader.feed(k.value(), v.value())?;
                }
            }
            let (keys, bytes) = (loader.keys(), loader.bytes());
            let snapshot = loader.finish()?;
            tracing::info!(
                keys,
                bytes,
                ms = started.elapsed().as_millis() as u64,
                "snapshot loaded from the embedded store"
            );
            crate::server::metrics::metrics().snapshot_loaded(keys, bytes, started.elapsed());
            Ok(snapshot)
        })
        .await
        .map_err(|e| LoadError::new(LoadCause::Unavailable, e))?
    }
}

fn write_blocking(
    db: &Database,
    batch: &WriteBatch,
    term: Term,
) -> Result<WriteResult, redb::Error> {
    let tx = db.begin_write()?;
    {
        let mut table = tx.open_table(KV)?;
        let current = table.get(FENCE_KEY)?.map(|v| v.value().to_vec());
        if let Some(result) = batch.judge(batch.term == term, current.as_deref()).result() {
            return Ok(result); // dropping the transaction aborts it
        }
        for op in &batch.ops {
            match op {
                Op::Put { key, value } => {
                    table.insert(key.as_str(), value.as_slice())?;
                }
                Op::Delete { key } => {
                    table.remove(key.as_str())?;
                }
                Op::DeletePrefix { prefix } => {
                    let doomed: Vec<String> = table
                        .range(prefix.as_str()..)?
                        .map(|kv| kv.map(|(k, _)| k.value().to_owned()))
                        .take_while(|k| k.as_ref().map_or(true, |k| k.starts_with(prefix.as_str())))
                        .collect::<Result<_, _>>()?;
                    for key in doomed {
                        table.remove(key.as_str())?;
                    }
                }
            }
        }
        table.insert(FENCE_KEY, batch.fence.as_slice())?;
    }
    tx.commit()?;
    Ok(WriteResult::Ok)
}

/// Runs file IO off the async workers. Simulations (madsim) refuse blocking threads and never
/// use the embedded store, so there it runs inline.
async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Result<R, String> {
    #[cfg(not(madsim))]
    return tokio::task::spawn_blocking(f).await.map_err(|e| e.to_string());
    #[cfg(madsim)]
    return Ok(f());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::{ClusterId, WriteId};
    use crate::core::model::Mutation;
    use crate::core::model::{ClusterRecord, FenceRecord, SchemaRecord};
    use prost::Message;

    fn batch(store: &EmbeddedStore, seq: u64, mutations: Vec<Mutation>) -> WriteBatch {
        let fence = |seq| FenceRecord { term: store.term().0, seq }.encode_to_vec();
        let ops = mutations.iter().map(|m| m.to_op()).collect();
        WriteBatch {
            id: WriteId(seq),
            term: store.term(),
            expected_fence: (seq > 1).then(|| fence(seq - 1)),
            fence: fence(seq),
            ops,
        }
    }

    /// A dropped cluster's range delete takes everything inside it, and nothing of its
    /// neighbours'.
    #[tokio::test]
    async fn a_range_delete_takes_exactly_one_clusters_contents() {
        let dir =
            std::env::temp_dir().join(format!("shardmeta-embedded-prefix-{}", std::process::id()));
        let store = EmbeddedStore::open(&dir).unwrap();
        let cluster = |id: u32| {
            let c = ClusterId(id);
            let record =
                ClusterRecord { id, name: format!("c{id}"), shard_count: 1, ..Default::default() };
            vec![
                Mutation::PutIdCeiling(c, 100),
                Mutation::PutCluster(record),
                Mutation::PutSchema(
                    c,
                    SchemaRecord { id: 0, name: "public".into(), dropping: false },
                ),
            ]
        };
        assert_eq!(
            store.write(&batch(&store, 1, [cluster(1), cluster(10)].concat())).await,
            WriteResult::Ok
        );
        let drop = vec![
            Mutation::DeleteClusterData(ClusterId(1)),
            Mutation::PutCluster(ClusterRecord { id: 1, dropped: true, ..Default::default() }),
        ];
        assert_eq!(store.write(&batch(&store, 2, drop)).await, WriteResult::Ok);
        let snapshot = store.snapshot().await.unwrap();
        assert!(snapshot.catalog.clusters.keys().eq([&ClusterId(10)]));
        assert!(snapshot.catalog.dropped_clusters.contains(&ClusterId(1)));
        assert_eq!(
            snapshot.catalog.cluster(ClusterId(10)).schemas.len(),
            1,
            "the neighbour keeps its contents"
        );
        drop_dir(&dir);
    }

    fn drop_dir(dir: &Path) {
        let _ = std::fs::remove_dir_all(dir);
    }
}
