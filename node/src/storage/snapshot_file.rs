//! Snapshot files in the data directory.
//!
//! Layout: `MESNAP01`, a u32 LE header length and the header (what the
//! Raft layer records about the snapshot: its position and membership), a
//! u64 LE body length and the state's snapshot body, then
//! a u64 LE checksum of everything before it. A file is written to a
//! temporary name, synced, renamed into place and the directory synced, so a
//! crash leaves either the old snapshot or the new one, never half of one. A
//! file that fails its checks is an error naming the file: never skipped.
//! Header and body are bytes here: this module never decodes either.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::{Buf, Bytes};
use matchengine_digest::hash_bytes;

const MAGIC: &[u8; 8] = b"MESNAP01";
const SUFFIX: &str = ".snap";
/// Largest snapshot header (the metadata, mostly the membership).
const HEADER_BYTES_MAX: u32 = 1 << 20;

/// A complete, verified snapshot file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotFile {
    pub path: PathBuf,
    /// The header as written: the Raft layer's record of the snapshot.
    pub header: Bytes,
    pub size_bytes: u64,
}

/// The log position a snapshot covers, which names its file; `None` for a
/// snapshot of the empty state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotPosition {
    pub index: u64,
    pub term: u64,
    pub node_id: u64,
}

/// A snapshot file that is unreadable or damaged.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotFileError {
    #[error("snapshot {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("snapshot {path} is damaged: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

impl SnapshotFileError {
    pub fn into_io(self) -> io::Error {
        let kind = match &self {
            SnapshotFileError::Io { source, .. } => source.kind(),
            SnapshotFileError::Corrupt { .. } => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, self.to_string())
    }
}

fn io_error(path: &Path) -> impl Fn(io::Error) -> SnapshotFileError + '_ {
    move |source| SnapshotFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `snapshot-<index>-<term>-<leader>.snap`, zero-padded so names sort by index.
fn file_name(position: Option<SnapshotPosition>) -> String {
    match position {
        Some(position) => format!(
            "snapshot-{:020}-{:020}-{:020}{SUFFIX}",
            position.index, position.term, position.node_id
        ),
        None => format!("snapshot-empty{SUFFIX}"),
    }
}

/// The position a snapshot file's name gives (`None` for the empty-state
/// snapshot or a name that is not a snapshot's), to check against what the
/// file's header says.
pub fn position_of(path: &Path) -> Option<SnapshotPosition> {
    let name = path.file_name()?.to_str()?;
    let numbers = name.strip_prefix("snapshot-")?.strip_suffix(SUFFIX)?;
    let mut parts = numbers.split('-').map(str::parse::<u64>);
    let position = SnapshotPosition {
        index: parts.next()?.ok()?,
        term: parts.next()?.ok()?,
        node_id: parts.next()?.ok()?,
    };
    parts.next().is_none().then_some(position)
}

/// Encodes a snapshot file's bytes.
pub fn encode(header: &[u8], body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(MAGIC.len() + 4 + header.len() + 8 + body.len() + 8);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
    bytes.extend_from_slice(body);
    let checksum = hash_bytes(&bytes);
    bytes.extend_from_slice(&checksum.to_le_bytes());
    bytes
}

/// Checks a snapshot file's bytes and splits them into header and body.
pub fn decode(path: &Path, bytes: Bytes) -> Result<(Bytes, Bytes), SnapshotFileError> {
    let corrupt = |reason: String| SnapshotFileError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.len() < MAGIC.len() + 4 + 8 + 8 || &bytes[..MAGIC.len()] != MAGIC {
        return Err(corrupt(
            "not a MatchEngine snapshot (bad magic or too short)".into(),
        ));
    }
    let (content, stored) = bytes.split_at(bytes.len() - 8);
    let mut stored_bytes = [0u8; 8];
    stored_bytes.copy_from_slice(stored);
    let (stored, computed) = (u64::from_le_bytes(stored_bytes), hash_bytes(content));
    if stored != computed {
        return Err(corrupt(format!(
            "checksum mismatch (stored {stored:016x}, computed {computed:016x})"
        )));
    }
    let mut reader = bytes.slice(MAGIC.len()..bytes.len() - 8);
    let header_len = reader.get_u32_le();
    if header_len > HEADER_BYTES_MAX || header_len as usize + 8 > reader.remaining() {
        return Err(corrupt(format!("header length {header_len} out of range")));
    }
    let header = reader.split_to(header_len as usize);
    let body_len = reader.get_u64_le();
    if body_len != reader.remaining() as u64 {
        return Err(corrupt(format!(
            "body length {body_len} does not match the file"
        )));
    }
    Ok((header, reader))
}

/// Writes a snapshot file durably into `dir` and returns it.
pub fn write(
    dir: &Path,
    position: Option<SnapshotPosition>,
    header: &[u8],
    body: &[u8],
) -> Result<SnapshotFile, SnapshotFileError> {
    assert!(
        header.len() <= HEADER_BYTES_MAX as usize,
        "a snapshot header of {} bytes would not read back",
        header.len()
    );
    let bytes = encode(header, body);
    let path = dir.join(file_name(position));
    let temporary = dir.join(format!(".{}.tmp", file_name(position)));
    let written = File::create(&temporary).and_then(|mut file| {
        file.write_all(&bytes)?;
        file.sync_all()
    });
    if let Err(error) = written {
        // A full disk gets its space back at once, not at the next snapshot.
        let _ = fs::remove_file(&temporary);
        return Err(io_error(&temporary)(error));
    }
    fs::rename(&temporary, &path).map_err(io_error(&path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))?;
    Ok(SnapshotFile {
        path,
        header: Bytes::copy_from_slice(header),
        size_bytes: bytes.len() as u64,
    })
}

/// Reads and verifies a snapshot file.
pub fn read(path: &Path) -> Result<(SnapshotFile, Bytes), SnapshotFileError> {
    let bytes = Bytes::from(fs::read(path).map_err(io_error(path))?);
    let size_bytes = bytes.len() as u64;
    let (header, body) = decode(path, bytes)?;
    Ok((
        SnapshotFile {
            path: path.to_path_buf(),
            header,
            size_bytes,
        },
        body,
    ))
}

/// The newest snapshot in `dir`, verified. A damaged newest snapshot is an
/// error: falling back to an older one could lose data the log no longer has.
pub fn newest(dir: &Path) -> Result<Option<(SnapshotFile, Bytes)>, SnapshotFileError> {
    let mut names: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(io_error(dir))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("snapshot-") && name.ends_with(SUFFIX))
        })
        .collect();
    names.sort();
    match names.last() {
        Some(path) => read(path).map(Some),
        None => Ok(None),
    }
}

/// Removes every snapshot and leftover temporary file in `dir` but `keep`.
pub fn remove_others(dir: &Path, keep: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("");
        let ours = (name.starts_with("snapshot-") && name.ends_with(SUFFIX))
            || name.ends_with(".snap.tmp");
        if ours && path != keep {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(index: u64) -> Option<SnapshotPosition> {
        Some(SnapshotPosition {
            index,
            term: 2,
            node_id: 1,
        })
    }

    #[test]
    fn written_snapshots_read_back_and_the_newest_wins() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), at(9), b"h9", b"older").unwrap();
        let newer = write(dir.path(), at(10), b"h10", b"newer body").unwrap();
        let (file, body) = newest(dir.path()).unwrap().unwrap();
        assert_eq!(file, newer);
        assert_eq!(file.header.as_ref(), b"h10");
        assert_eq!(position_of(&file.path), at(10));
        assert_eq!(position_of(Path::new("snapshot-empty.snap")), None);
        assert_eq!(body.as_ref(), b"newer body");
        remove_others(dir.path(), &newer.path).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn damage_is_an_error_that_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), at(3), b"h3", b"state").unwrap();
        let mut bytes = fs::read(&file.path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x10;
        fs::write(&file.path, &bytes).unwrap();
        let error = newest(dir.path()).unwrap_err().to_string();
        assert!(error.contains(&file.path.display().to_string()), "{error}");
        assert!(error.contains("checksum"), "{error}");
        for len in 0..bytes.len() {
            assert!(decode(&file.path, Bytes::copy_from_slice(&bytes[..len])).is_err());
        }
    }
}
