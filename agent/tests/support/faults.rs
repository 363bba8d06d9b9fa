//! Faults injected by wrapping the real traits (no mocks): an `ObjectStore` that fails PUTs
//! or GETs while a flag is set, and a `Metadata` that fails `commit_object` before or after
//! delegating to the real service.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use floe_metadata::{
    CommitResult, IndexEntry, Metadata, MetadataError, MetadataService, ObjectCommit, TopicId,
    TopicInfo, TopicSpec, WatchBatch, WatchCursor,
};
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};

/// An object store that fails writes (or reads) while its flags are set.
#[derive(Debug)]
pub struct FailingStore {
    inner: Arc<dyn ObjectStore>,
    /// Fail every `put_opts` while set.
    pub fail_puts: AtomicBool,
    /// Fail every `get_opts` / `get_ranges` while set.
    pub fail_gets: AtomicBool,
    /// PUTs refused so far.
    pub failed_puts: AtomicUsize,
    /// GETs refused so far.
    pub failed_gets: AtomicUsize,
}

impl FailingStore {
    /// Wraps `inner`, failing nothing yet.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Arc<FailingStore> {
        Arc::new(FailingStore {
            inner,
            fail_puts: AtomicBool::new(false),
            fail_gets: AtomicBool::new(false),
            failed_puts: AtomicUsize::new(0),
            failed_gets: AtomicUsize::new(0),
        })
    }

    fn injected(what: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "FailingStore",
            source: format!("injected {what} failure").into(),
        }
    }

    fn check_get(&self) -> object_store::Result<()> {
        if self.fail_gets.load(Ordering::SeqCst) {
            self.failed_gets.fetch_add(1, Ordering::SeqCst);
            return Err(Self::injected("get"));
        }
        Ok(())
    }
}

impl fmt::Display for FailingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FailingStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FailingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        if self.fail_puts.load(Ordering::SeqCst) {
            self.failed_puts.fetch_add(1, Ordering::SeqCst);
            return Err(Self::injected("put"));
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        if self.fail_puts.load(Ordering::SeqCst) {
            self.failed_puts.fetch_add(1, Ordering::SeqCst);
            return Err(Self::injected("multipart put"));
        }
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.check_get()?;
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.check_get()?;
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

/// The real metadata service with injectable `commit_object` failures.
pub struct FlakyMetadata {
    inner: Arc<MetadataService>,
    /// Fail this many commits before they reach the service (nothing committed).
    pub fail_before: AtomicU32,
    /// Fail this many commits after the service applied them (the answer is lost).
    pub fail_after: AtomicU32,
    /// Fail every commit before it reaches the service while set.
    pub fail_always: AtomicBool,
    /// Object key of every `commit_object` call, in call order.
    pub commit_keys: Mutex<Vec<String>>,
}

impl FlakyMetadata {
    /// Wraps `inner`, failing nothing yet.
    pub fn new(inner: Arc<MetadataService>) -> Arc<FlakyMetadata> {
        Arc::new(FlakyMetadata {
            inner,
            fail_before: AtomicU32::new(0),
            fail_after: AtomicU32::new(0),
            fail_always: AtomicBool::new(false),
            commit_keys: Mutex::new(Vec::new()),
        })
    }

    /// Keys seen by `commit_object` so far.
    pub fn keys(&self) -> Vec<String> {
        self.commit_keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn take(counter: &AtomicU32) -> bool {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

#[async_trait]
impl Metadata for FlakyMetadata {
    async fn cluster_id(&self) -> floe_metadata::Result<String> {
        self.inner.cluster_id().await
    }

    async fn create_topic(&self, spec: TopicSpec) -> floe_metadata::Result<TopicInfo> {
        self.inner.create_topic(spec).await
    }

    async fn delete_topic(&self, name: &str) -> floe_metadata::Result<TopicId> {
        self.inner.delete_topic(name).await
    }

    async fn lifecycle(
        &self,
        call: floe_metadata::LifecycleCall,
    ) -> floe_metadata::Result<floe_metadata::LifecycleReply> {
        self.inner.lifecycle(call).await
    }

    async fn txn(
        &self,
        call: floe_metadata::TxnCall,
    ) -> floe_metadata::Result<floe_metadata::TxnReply> {
        self.inner.txn(call).await
    }

    async fn create_partitions(&self, name: &str, total: i32) -> floe_metadata::Result<TopicInfo> {
        self.inner.create_partitions(name, total).await
    }

    async fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> floe_metadata::Result<()> {
        self.inner.set_topic_configs(name, configs).await
    }

    async fn list_topics(&self) -> floe_metadata::Result<Vec<TopicInfo>> {
        self.inner.list_topics().await
    }

    async fn commit_object(&self, commit: ObjectCommit) -> floe_metadata::Result<CommitResult> {
        self.commit_keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(commit.object_key.clone());
        if self.fail_always.load(Ordering::SeqCst) || Self::take(&self.fail_before) {
            return Err(MetadataError::Unavailable(
                "injected commit failure before the service".into(),
            ));
        }
        let result = self.inner.commit_object(commit).await?;
        if Self::take(&self.fail_after) {
            return Err(MetadataError::Unavailable(
                "injected loss of the commit answer".into(),
            ));
        }
        Ok(result)
    }

    async fn read_index(
        &self,
        topic_id: TopicId,
        partition: i32,
        from_offset: i64,
        max_entries: u32,
    ) -> floe_metadata::Result<Vec<IndexEntry>> {
        self.inner
            .read_index(topic_id, partition, from_offset, max_entries)
            .await
    }

    async fn find_by_timestamp(
        &self,
        topic_id: TopicId,
        partition: i32,
        timestamp_ms: i64,
    ) -> floe_metadata::Result<Option<IndexEntry>> {
        self.inner
            .find_by_timestamp(topic_id, partition, timestamp_ms)
            .await
    }

    async fn watch(
        &self,
        cursor: WatchCursor,
        timeout: Duration,
    ) -> floe_metadata::Result<WatchBatch> {
        self.inner.watch(cursor, timeout).await
    }

    async fn find_max_timestamp(
        &self,
        topic_id: floe_metadata::TopicId,
        partition: i32,
    ) -> floe_metadata::Result<Option<floe_metadata::IndexEntry>> {
        self.inner.find_max_timestamp(topic_id, partition).await
    }

    async fn group(
        &self,
        call: floe_metadata::GroupCall,
    ) -> floe_metadata::Result<floe_metadata::GroupReply> {
        self.inner.group(call).await
    }

    async fn new_producer_id(&self) -> floe_metadata::Result<i64> {
        self.inner.new_producer_id().await
    }

    async fn agent_heartbeat(
        &self,
        agent: floe_metadata::AgentInfo,
    ) -> floe_metadata::Result<Vec<floe_metadata::AgentInfo>> {
        self.inner.agent_heartbeat(agent).await
    }

    async fn agent_leave(&self, node_id: i32, instance: &str) -> floe_metadata::Result<()> {
        self.inner.agent_leave(node_id, instance).await
    }

    async fn fetch_offsets(
        &self,
        group_id: &str,
    ) -> floe_metadata::Result<Vec<floe_metadata::CommittedOffset>> {
        self.inner.fetch_offsets(group_id).await
    }
}
