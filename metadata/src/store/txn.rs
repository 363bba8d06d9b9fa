//! The transaction coordinator's decisions, shared by both backends: the backends read the
//! rows, these functions decide, the backends write. Kafka's coordinator
//! (`TransactionCoordinator`, `TransactionMetadata`) is the reference for every error code.
//!
//! Unlike Kafka, the states `PrepareCommit`/`PrepareAbort` are never stored: EndTxn writes
//! every marker, moves the offsets and completes the transaction in one database
//! transaction, so there is nothing to recover half-way.

use crate::types::{TxnProducer, TxnRefusal};

/// Kafka's `transaction.max.timeout.ms` default: longer timeouts are refused.
pub const MAX_TIMEOUT_MS: i32 = 900_000;

/// A `transactions` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TxnRow {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub prev_epoch: Option<i16>,
    pub state: TxnState,
    pub timeout_ms: i32,
    pub started_at_ms: Option<i64>,
}

/// The stored states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxnState {
    Empty,
    Ongoing,
    CompleteCommit,
    CompleteAbort,
}

impl TxnState {
    /// The `transactions.state` value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TxnState::Empty => "empty",
            TxnState::Ongoing => "ongoing",
            TxnState::CompleteCommit => "complete_commit",
            TxnState::CompleteAbort => "complete_abort",
        }
    }

    /// Kafka's name, as DescribeTransactions and ListTransactions show it.
    pub(crate) fn kafka_name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
        }
    }

    pub(crate) fn parse(s: &str) -> crate::error::Result<Self> {
        Ok(match s {
            "empty" => TxnState::Empty,
            "ongoing" => TxnState::Ongoing,
            "complete_commit" => TxnState::CompleteCommit,
            "complete_abort" => TxnState::CompleteAbort,
            other => {
                return Err(crate::error::MetadataError::Database(format!(
                    "unexpected transaction state {other:?}"
                )))
            }
        })
    }
}

/// Checks that `p` is the current producer of its transactional id.
pub(crate) fn check_producer(row: Option<&TxnRow>, p: &TxnProducer) -> Result<(), TxnRefusal> {
    let Some(row) = row else {
        return Err(TxnRefusal::InvalidProducerIdMapping);
    };
    if row.producer_id != p.producer_id {
        return Err(TxnRefusal::InvalidProducerIdMapping);
    }
    if row.producer_epoch != p.producer_epoch {
        return Err(TxnRefusal::ProducerFenced);
    }
    Ok(())
}

/// What InitProducerId does to an existing transactional id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Init {
    /// A retry of an InitProducerId that already bumped the epoch (or the producer of a
    /// transaction the coordinator aborted and bumped): the current epoch, unchanged.
    Current,
    /// Bump the epoch, aborting the open transaction first (with the new epoch).
    Bump { abort_open: bool },
    /// The epoch is exhausted: a new producer id with epoch 0 (after aborting, with the
    /// last epoch of the old id, which fences its producers as well).
    NewId { abort_open: bool },
}

/// Kafka's rules for InitProducerId on an id that exists: with `expected` (KIP-360) the
/// caller must hold the current epoch (bumped), or the one it held before the last bump it
/// asked for or the coordinator made (`prev_epoch`: answered with the current epoch).
pub(crate) fn init(row: &TxnRow, expected: Option<(i64, i16)>) -> Result<Init, TxnRefusal> {
    if let Some((pid, epoch)) = expected {
        if pid != row.producer_id {
            return Err(TxnRefusal::ProducerFenced);
        }
        if epoch != row.producer_epoch {
            return if Some(epoch) == row.prev_epoch {
                Ok(Init::Current)
            } else {
                Err(TxnRefusal::ProducerFenced)
            };
        }
    }
    let abort_open = row.state == TxnState::Ongoing;
    // Epochs run to i16::MAX - 1 so a bump for the abort and one for the caller both fit.
    if row.producer_epoch >= i16::MAX - 2 {
        return Ok(Init::NewId { abort_open });
    }
    Ok(Init::Bump { abort_open })
}

/// What EndTxn does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// Write the markers and complete.
    Write,
    /// A retry of an EndTxn that already completed the same way: nothing to do.
    AlreadyDone,
}

/// Kafka's rules for EndTxn once the producer is checked.
pub(crate) fn end(row: &TxnRow, commit: bool) -> Result<End, TxnRefusal> {
    match (row.state, commit) {
        (TxnState::Ongoing, _) => Ok(End::Write),
        (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(End::AlreadyDone),
        _ => Err(TxnRefusal::InvalidTxnState),
    }
}

/// Kafka's check of `transaction.timeout.ms`.
pub(crate) fn check_timeout(timeout_ms: i32) -> Result<(), TxnRefusal> {
    if timeout_ms <= 0 || timeout_ms > MAX_TIMEOUT_MS {
        return Err(TxnRefusal::InvalidTransactionTimeout);
    }
    Ok(())
}

/// What a transactional produce needs to know about its producer's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProduceTxn {
    pub transactional_id: String,
    pub producer_epoch: i16,
    pub ongoing: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(epoch: i16, state: TxnState) -> TxnRow {
        TxnRow {
            producer_id: 7,
            producer_epoch: epoch,
            prev_epoch: Some(epoch - 1),
            state,
            timeout_ms: 60_000,
            started_at_ms: None,
        }
    }

    fn producer(pid: i64, epoch: i16) -> TxnProducer {
        TxnProducer {
            transactional_id: "t".into(),
            producer_id: pid,
            producer_epoch: epoch,
        }
    }

    #[test]
    fn only_the_current_epoch_of_the_current_id_may_act() {
        let r = row(3, TxnState::Ongoing);
        assert_eq!(check_producer(Some(&r), &producer(7, 3)), Ok(()));
        assert_eq!(
            check_producer(Some(&r), &producer(7, 2)),
            Err(TxnRefusal::ProducerFenced)
        );
        assert_eq!(
            check_producer(Some(&r), &producer(8, 3)),
            Err(TxnRefusal::InvalidProducerIdMapping)
        );
        assert_eq!(
            check_producer(None, &producer(7, 3)),
            Err(TxnRefusal::InvalidProducerIdMapping)
        );
    }

    #[test]
    fn init_bumps_and_aborts_an_open_transaction() {
        assert_eq!(
            init(&row(3, TxnState::Ongoing), None),
            Ok(Init::Bump { abort_open: true })
        );
        assert_eq!(
            init(&row(3, TxnState::CompleteCommit), Some((7, 3))),
            Ok(Init::Bump { abort_open: false })
        );
        // The epoch before the last bump: a retry, answered with the current epoch.
        assert_eq!(
            init(&row(3, TxnState::CompleteAbort), Some((7, 2))),
            Ok(Init::Current)
        );
        assert_eq!(
            init(&row(3, TxnState::Empty), Some((7, 1))),
            Err(TxnRefusal::ProducerFenced)
        );
        assert_eq!(
            init(&row(i16::MAX - 2, TxnState::Ongoing), None),
            Ok(Init::NewId { abort_open: true })
        );
    }

    #[test]
    fn end_completes_once_and_accepts_its_own_retry() {
        assert_eq!(end(&row(1, TxnState::Ongoing), true), Ok(End::Write));
        assert_eq!(
            end(&row(1, TxnState::CompleteCommit), true),
            Ok(End::AlreadyDone)
        );
        assert_eq!(
            end(&row(1, TxnState::CompleteCommit), false),
            Err(TxnRefusal::InvalidTxnState)
        );
        assert_eq!(
            end(&row(1, TxnState::Empty), true),
            Err(TxnRefusal::InvalidTxnState)
        );
    }

    #[test]
    fn timeouts_are_bounded() {
        assert!(check_timeout(60_000).is_ok());
        assert!(check_timeout(0).is_err());
        assert!(check_timeout(MAX_TIMEOUT_MS + 1).is_err());
    }
}
