//! Object-store access for every role: building the store from an `s3://` or `file://`
//! URL, and [`Objects`], the thin layer every call goes through so that each billed
//! request is counted by operation and purpose (the `floe cost` inputs).

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use thiserror::Error;

use crate::metrics::{Metrics, ObjectLabels};

/// Object-store errors as the roles see them.
#[derive(Debug, Error)]
pub enum ObjectsError {
    /// The URL is not `s3://bucket[/prefix]` or `file:///dir`.
    #[error("invalid object store url {0:?}: {1}")]
    InvalidUrl(String, String),
    /// The store refused or failed the request.
    #[error("object store error: {0}")]
    Store(#[from] object_store::Error),
    /// Bytes read back fail their checksums.
    #[error("corrupt object data: {0}")]
    Corrupt(String),
    /// Local directory could not be prepared.
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
}

impl ObjectsError {
    /// Whether the object does not exist (deleted, or never written).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            ObjectsError::Store(object_store::Error::NotFound { .. })
        )
    }
}

/// Where objects live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectStoreUrl {
    /// An S3 bucket and key prefix (no leading or trailing slash).
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix, possibly empty.
        prefix: String,
    },
    /// A local directory (the playground's default).
    File(std::path::PathBuf),
}

impl ObjectStoreUrl {
    /// Parses `s3://bucket/prefix` or `file:///abs/dir` (a bare path is taken as a directory).
    pub fn parse(url: &str) -> Result<Self, ObjectsError> {
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(ObjectsError::InvalidUrl(
                    url.into(),
                    "missing bucket".into(),
                ));
            }
            Ok(ObjectStoreUrl::S3 {
                bucket: bucket.into(),
                prefix: prefix.trim_matches('/').into(),
            })
        } else if let Some(path) = url.strip_prefix("file://") {
            if path.is_empty() {
                return Err(ObjectsError::InvalidUrl(url.into(), "missing path".into()));
            }
            Ok(ObjectStoreUrl::File(path.into()))
        } else if url.contains("://") {
            Err(ObjectsError::InvalidUrl(
                url.into(),
                "scheme must be s3:// or file://".into(),
            ))
        } else {
            Ok(ObjectStoreUrl::File(url.into()))
        }
    }

    /// Builds the store. S3 credentials and region come from the usual `AWS_*` environment
    /// variables; `s3_endpoint` points at an S3-compatible server (path-style, http allowed).
    pub fn build(
        &self,
        s3_endpoint: Option<&str>,
    ) -> Result<(Arc<dyn ObjectStore>, Path), ObjectsError> {
        match self {
            ObjectStoreUrl::S3 { bucket, prefix } => {
                let mut b = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
                if std::env::var_os("AWS_REGION").is_none()
                    && std::env::var_os("AWS_DEFAULT_REGION").is_none()
                {
                    b = b.with_region("us-east-1");
                }
                if let Some(ep) = s3_endpoint {
                    b = b
                        .with_endpoint(ep)
                        .with_allow_http(true)
                        .with_virtual_hosted_style_request(false);
                }
                Ok((Arc::new(b.build()?), Path::from(prefix.as_str())))
            }
            ObjectStoreUrl::File(dir) => {
                std::fs::create_dir_all(dir)?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(dir)?
                    .with_automatic_cleanup(true);
                Ok((Arc::new(fs), Path::default()))
            }
        }
    }
}

/// An object found by [`Objects::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Key relative to the prefix.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification (upload) time, ms since the Unix epoch.
    pub last_modified_ms: i64,
}

/// The object store as Floe's roles use it: keys relative to a prefix, every call counted.
#[derive(Clone)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    metrics: Arc<Metrics>,
}

impl Objects {
    /// Wraps `store`, placing every key under `prefix`.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: Path, metrics: Arc<Metrics>) -> Self {
        Objects {
            store,
            prefix,
            metrics,
        }
    }

    fn path(&self, key: &str) -> Path {
        let mut p = self.prefix.clone();
        for part in key.split('/') {
            p = p.clone().join(part);
        }
        p
    }

    fn count(&self, op: &'static str, purpose: &'static str, ok: bool, bytes: u64) {
        let l = ObjectLabels {
            op,
            purpose,
            outcome: if ok { "ok" } else { "error" },
        };
        self.metrics.object_requests.get_or_create(&l).inc();
        if bytes > 0 {
            self.metrics.object_bytes.get_or_create(&l).inc_by(bytes);
        }
    }

    /// Writes a whole object.
    pub async fn put(
        &self,
        key: &str,
        data: Bytes,
        purpose: &'static str,
    ) -> Result<(), ObjectsError> {
        let len = data.len() as u64;
        let r = self
            .store
            .put(&self.path(key), PutPayload::from(data))
            .await;
        self.count("put", purpose, r.is_ok(), if r.is_ok() { len } else { 0 });
        r.map(|_| ()).map_err(Into::into)
    }

    /// Reads a byte range of an object.
    pub async fn get_range(
        &self,
        key: &str,
        range: Range<u64>,
        purpose: &'static str,
    ) -> Result<Bytes, ObjectsError> {
        let started = Instant::now();
        let r = self.store.get_range(&self.path(key), range).await;
        let n = r.as_ref().map(|b| b.len() as u64).unwrap_or(0);
        self.count("get", purpose, r.is_ok(), n);
        tracing::trace!(
            key,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "ranged get"
        );
        r.map_err(Into::into)
    }

    /// Reads a whole object.
    pub async fn get(&self, key: &str, purpose: &'static str) -> Result<Bytes, ObjectsError> {
        let r = match self.store.get(&self.path(key)).await {
            Ok(g) => g.bytes().await,
            Err(e) => Err(e),
        };
        let n = r.as_ref().map(|b| b.len() as u64).unwrap_or(0);
        self.count("get", purpose, r.is_ok(), n);
        r.map_err(Into::into)
    }

    /// Every object whose key starts with `dir/` (e.g. `wal`), with its size and age, as a
    /// stream (the store pages underneath: a listing of millions of objects is never held
    /// in memory). Counted as one LIST per call.
    pub fn list(
        &self,
        dir: &str,
        purpose: &'static str,
    ) -> impl futures::Stream<Item = Result<Listed, ObjectsError>> + '_ {
        use futures::StreamExt;
        self.count("list", purpose, true, 0);
        let prefix = self.path(dir.trim_end_matches('/'));
        self.store.list(Some(&prefix)).filter_map(move |item| {
            let out = match item {
                Ok(meta) => meta.location.prefix_match(&self.prefix).map(|parts| {
                    Ok(Listed {
                        key: parts
                            .map(|p| p.as_ref().to_string())
                            .collect::<Vec<_>>()
                            .join("/"),
                        size: meta.size,
                        last_modified_ms: meta.last_modified.timestamp_millis(),
                    })
                }),
                Err(e) => Some(Err(e.into())),
            };
            futures::future::ready(out)
        })
    }

    /// Deletes an object (missing objects are not an error).
    pub async fn delete(&self, key: &str, purpose: &'static str) -> Result<(), ObjectsError> {
        let r = self.store.delete(&self.path(key)).await;
        self.count("delete", purpose, r.is_ok(), 0);
        match r {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        assert_eq!(
            ObjectStoreUrl::parse("s3://b/p/q/").ok(),
            Some(ObjectStoreUrl::S3 {
                bucket: "b".into(),
                prefix: "p/q".into()
            })
        );
        assert_eq!(
            ObjectStoreUrl::parse("s3://b").ok(),
            Some(ObjectStoreUrl::S3 {
                bucket: "b".into(),
                prefix: String::new()
            })
        );
        assert_eq!(
            ObjectStoreUrl::parse("file:///tmp/x").ok(),
            Some(ObjectStoreUrl::File("/tmp/x".into()))
        );
        assert!(ObjectStoreUrl::parse("s3://").is_err());
        assert!(ObjectStoreUrl::parse("gs://b").is_err());
    }
}
