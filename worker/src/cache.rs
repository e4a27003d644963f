//! Models on disk, addressed by their sha256: `<dir>/<sha256>.onnx`.
//!
//! An entry is trusted only after its bytes hash to its name: a corrupt or
//! truncated file is deleted and fetched again. Downloads land in a temporary
//! file in the same folder and are renamed into place, so a crash or a
//! concurrent fetch never leaves a half-written model under a valid name.

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use tally_protocol::{Client, Sha256Hex};

/// What can go wrong keeping models on disk.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Reading, writing or renaming a cache file failed.
    #[error("model cache {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The market (or whoever fetched) could not deliver the model.
    #[error("fetching model {hash}")]
    Fetch {
        hash: Sha256Hex,
        #[source]
        source: tally_protocol::Error,
    },
    /// The fetched bytes are not the model that was asked for.
    #[error("fetched model hashes to {got}, not to the requested {expected}")]
    HashMismatch { expected: Sha256Hex, got: Sha256Hex },
}

impl CacheError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        CacheError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A folder of models named by their sha256.
#[derive(Debug, Clone)]
pub struct ModelCache {
    dir: PathBuf,
}

impl ModelCache {
    /// A cache in `dir` (created when first written to).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ModelCache { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the model `hash` lives (whether or not it is there).
    pub fn path_of(&self, hash: &Sha256Hex) -> PathBuf {
        self.dir.join(format!("{hash}.onnx"))
    }

    /// The verified path of model `hash`, downloading it from the market when
    /// it is missing or corrupt.
    pub async fn get_or_fetch(
        &self,
        client: &Client,
        hash: &Sha256Hex,
    ) -> Result<PathBuf, CacheError> {
        self.get_or_fetch_with(hash, || async {
            client
                .model(hash)
                .await
                .map_err(|source| CacheError::Fetch {
                    hash: hash.clone(),
                    source,
                })
        })
        .await
    }

    /// [`Self::get_or_fetch`] with any source of bytes.
    pub async fn get_or_fetch_with<F, Fut>(
        &self,
        hash: &Sha256Hex,
        fetch: F,
    ) -> Result<PathBuf, CacheError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, CacheError>>,
    {
        let path = self.path_of(hash);
        if self.verify(hash).await? {
            return Ok(path);
        }
        let (got, bytes) = hash_bytes(fetch().await?).await;
        if &got != hash {
            return Err(CacheError::HashMismatch {
                expected: hash.clone(),
                got,
            });
        }
        tracing::info!(model = %hash, bytes = bytes.len(), "model downloaded");
        self.write(hash, bytes).await
    }

    /// Copies model bytes into the cache; returns their hash and path.
    pub async fn insert(&self, bytes: Vec<u8>) -> Result<(Sha256Hex, PathBuf), CacheError> {
        let (hash, bytes) = hash_bytes(bytes).await;
        if self.verify(&hash).await? {
            let path = self.path_of(&hash);
            return Ok((hash, path));
        }
        let path = self.write(&hash, bytes).await?;
        Ok((hash, path))
    }

    /// The models already in the cache, verified (corrupt entries are removed).
    pub async fn list(&self) -> Result<Vec<Sha256Hex>, CacheError> {
        let mut entries = match tokio::fs::read_dir(&self.dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(CacheError::io(&self.dir, e)),
        };
        let mut found = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| CacheError::io(&self.dir, e))?
        {
            let name = entry.file_name();
            let Some(hash) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".onnx"))
                .and_then(|n| Sha256Hex::parse(n).ok())
            else {
                continue;
            };
            if self.verify(&hash).await? {
                found.push(hash);
            }
        }
        found.sort();
        Ok(found)
    }

    /// Whether a valid entry for `hash` is present; a corrupt one is deleted.
    async fn verify(&self, hash: &Sha256Hex) -> Result<bool, CacheError> {
        let path = self.path_of(hash);
        let hashed = tokio::task::spawn_blocking({
            let path = path.clone();
            move || hash_file(&path)
        })
        .await
        .expect("hashing a file does not panic");
        match hashed {
            Ok(got) if &got == hash => Ok(true),
            Ok(got) => {
                tracing::warn!(model = %hash, %got, path = %path.display(), "corrupt cached model removed; fetching it again");
                match tokio::fs::remove_file(&path).await {
                    Ok(()) => Ok(false),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                    Err(e) => Err(CacheError::io(&path, e)),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(CacheError::io(&path, e)),
        }
    }

    /// Writes `bytes` to a temporary file beside the entry, then renames it into place.
    async fn write(&self, hash: &Sha256Hex, bytes: Vec<u8>) -> Result<PathBuf, CacheError> {
        let dir = self.dir.clone();
        let path = self.path_of(hash);
        let tmp = dir.join(format!(".{hash}.{}.part", unique_suffix()));
        let result = tokio::task::spawn_blocking({
            let (path, tmp) = (path.clone(), tmp.clone());
            move || -> Result<(), CacheError> {
                std::fs::create_dir_all(&dir).map_err(|e| CacheError::io(&dir, e))?;
                let mut f = std::fs::File::create(&tmp).map_err(|e| CacheError::io(&tmp, e))?;
                f.write_all(&bytes)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| CacheError::io(&tmp, e))?;
                std::fs::rename(&tmp, &path).map_err(|e| CacheError::io(&path, e))
            }
        })
        .await
        .expect("writing a file does not panic");
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result.map(|()| path)
    }
}

/// Distinct per call and per process, for temporary file names.
fn unique_suffix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The hash of `bytes` (computed off the async runtime), and the bytes back.
async fn hash_bytes(bytes: Vec<u8>) -> (Sha256Hex, Vec<u8>) {
    tokio::task::spawn_blocking(move || (Sha256Hex::of(&bytes), bytes))
        .await
        .expect("hashing does not panic")
}

fn hash_file(path: &Path) -> std::io::Result<Sha256Hex> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    let digest = hex::encode(hasher.finalize());
    Ok(Sha256Hex::parse(&digest).expect("hex of a sha256 is a valid hash"))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    const MODEL: &[u8] = b"pretend these are onnx bytes";

    async fn fetch_counted(n: &AtomicUsize, bytes: &[u8]) -> Result<Vec<u8>, CacheError> {
        n.fetch_add(1, Ordering::SeqCst);
        Ok(bytes.to_vec())
    }

    #[tokio::test]
    async fn a_missing_model_is_fetched_once_then_served_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ModelCache::new(dir.path().join("models"));
        let hash = Sha256Hex::of(MODEL);
        let fetches = AtomicUsize::new(0);
        for _ in 0..2 {
            let path = cache
                .get_or_fetch_with(&hash, || fetch_counted(&fetches, MODEL))
                .await
                .unwrap();
            assert_eq!(path, dir.path().join(format!("models/{hash}.onnx")));
            assert_eq!(std::fs::read(&path).unwrap(), MODEL);
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        // No temporary files are left behind.
        assert_eq!(std::fs::read_dir(cache.dir()).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn a_corrupt_entry_is_deleted_and_fetched_again() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ModelCache::new(dir.path());
        let hash = Sha256Hex::of(MODEL);
        std::fs::write(cache.path_of(&hash), b"pretend these are onnx by").unwrap();
        let fetches = AtomicUsize::new(0);
        let path = cache
            .get_or_fetch_with(&hash, || fetch_counted(&fetches, MODEL))
            .await
            .unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert_eq!(std::fs::read(path).unwrap(), MODEL);
    }

    #[tokio::test]
    async fn bytes_that_are_not_the_requested_model_are_refused_and_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ModelCache::new(dir.path());
        let hash = Sha256Hex::of(MODEL);
        let fetches = AtomicUsize::new(0);
        let err = cache
            .get_or_fetch_with(&hash, || fetch_counted(&fetches, b"something else"))
            .await
            .unwrap_err();
        assert!(matches!(err, CacheError::HashMismatch { .. }), "{err}");
        assert!(!cache.path_of(&hash).exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn a_failed_fetch_caches_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ModelCache::new(dir.path());
        let hash = Sha256Hex::of(MODEL);
        let err = cache
            .get_or_fetch_with(&hash, || async {
                Err(CacheError::Fetch {
                    hash: hash.clone(),
                    source: tally_protocol::Error::Api {
                        status: 404,
                        code: "not_found".into(),
                        message: "no model".into(),
                    },
                })
            })
            .await
            .unwrap_err();
        assert!(matches!(err, CacheError::Fetch { .. }), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn inserted_models_are_listed_and_corrupt_ones_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ModelCache::new(dir.path());
        assert!(ModelCache::new(dir.path().join("absent"))
            .list()
            .await
            .unwrap()
            .is_empty());
        let (hash, path) = cache.insert(MODEL.to_vec()).await.unwrap();
        assert_eq!(hash, Sha256Hex::of(MODEL));
        assert_eq!(std::fs::read(path).unwrap(), MODEL);
        let other = Sha256Hex::of(b"other");
        std::fs::write(cache.path_of(&other), b"not other").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"ignored").unwrap();
        assert_eq!(cache.list().await.unwrap(), vec![hash]);
        assert!(!cache.path_of(&other).exists());
    }
}
