//! What can go wrong with the spool, classified for the daemon's reactions: a full or
//! read-only disk waits for space, a damaged spool stops the daemon.

use sled::transaction::TransactionError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path} is in use by another process (a running daemon?)")]
    Locked { path: PathBuf },
    #[error("cannot open spool {path}: {source}")]
    Open { path: PathBuf, source: sled::Error },
    #[error("spool disk full or read-only: {0}")]
    DiskFull(std::io::Error),
    #[error("spool storage error: {0}")]
    Storage(sled::Error),
    #[error("spool full: it holds {:.1} MiB, spool_max_mb allows {:.1}; ingestion waits, mail stays on the server", *used as f64 / 1048576.0, *limit as f64 / 1048576.0)]
    Full { used: u64, limit: u64 },
    #[error("spool record {key} does not decode: {reason}")]
    Corrupt { key: String, reason: String },
}

impl SpoolError {
    fn from_sled(e: sled::Error) -> SpoolError {
        match e {
            // sled hands out copies of a stored error that keep the kind but not the errno.
            sled::Error::Io(io)
                if matches!(io.raw_os_error(), Some(28 | 30 | 122))
                    || matches!(
                        io.kind(),
                        std::io::ErrorKind::StorageFull
                            | std::io::ErrorKind::ReadOnlyFilesystem
                            | std::io::ErrorKind::QuotaExceeded
                    ) =>
            {
                SpoolError::DiskFull(io)
            }
            other => SpoolError::Storage(other),
        }
    }

    /// ENOSPC, EROFS, EDQUOT: ingestion must stop and alarm, and resume when space returns.
    pub(crate) fn is_disk_full(&self) -> bool {
        matches!(self, SpoolError::DiskFull(_))
    }

    /// The spool's files are damaged (sled reports corruption, or a record does not decode):
    /// waiting or restarting cannot help; `spool salvage` can.
    pub(crate) fn is_damaged(&self) -> bool {
        let sled_damage = |e: &sled::Error| match e {
            sled::Error::Corruption { .. } => true,
            sled::Error::Io(io) => matches!(
                io.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
            ),
            _ => false,
        };
        match self {
            SpoolError::Corrupt { .. } => true,
            SpoolError::Open { source, .. } | SpoolError::Storage(source) => sled_damage(source),
            _ => false,
        }
    }
}

impl From<sled::Error> for SpoolError {
    fn from(e: sled::Error) -> Self {
        SpoolError::from_sled(e)
    }
}

impl From<TransactionError<SpoolError>> for SpoolError {
    fn from(e: TransactionError<SpoolError>) -> Self {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => SpoolError::from_sled(e),
        }
    }
}
