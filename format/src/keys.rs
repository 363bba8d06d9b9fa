//! Object keys, which say what an object is: WAL objects (`wal/<shard>/<node>-<unix ms>-<id>.wal`,
//! written by agents) hold many partitions' chunks with the producers' placeholder offsets;
//! segments (`seg/<shard>/<topic>.<partition>.<base>.<id>.<kind>`, written by the compactor)
//! hold one partition's batches with their real offsets. Segments the log cleaner wrote end
//! `.clean`, or `.h<unix ms>.clean` when they keep tombstones: the earliest delete horizon
//! (KIP-534) among them, so the cleaner knows when to come back without reading the segment.

/// Whether an object is a WAL object.
pub fn is_wal(key: &str) -> bool {
    key.starts_with("wal/")
}

/// Whether an object is a segment: its batches carry their real offsets (with gaps once a
/// compacted topic was cleaned), where a WAL chunk's follow from its index entry.
pub fn is_segment(key: &str) -> bool {
    key.starts_with("seg/")
}

/// Whether a segment was written by the log cleaner of a compacted topic.
pub fn is_cleaned(key: &str) -> bool {
    is_segment(key) && key.ends_with(".clean")
}

/// The `<kind>` of a cleaned segment's key: `clean`, with the earliest delete horizon of its
/// tombstones when it keeps any.
pub fn cleaned_kind(delete_horizon_ms: Option<i64>) -> String {
    match delete_horizon_ms {
        Some(h) => format!("h{h}.clean"),
        None => "clean".into(),
    }
}

/// The earliest delete horizon of a cleaned segment's tombstones, from its key.
pub fn delete_horizon_ms(key: &str) -> Option<i64> {
    if !is_cleaned(key) {
        return None;
    }
    let stem = key.strip_suffix(".clean")?;
    stem.rsplit('.').next()?.strip_prefix('h')?.parse().ok()
}

/// When a WAL object was written, from its key; `None` for other objects and for WAL keys
/// without a time (written before keys carried one).
pub fn wal_written_at_ms(key: &str) -> Option<i64> {
    if !is_wal(key) {
        return None;
    }
    let name = key.rsplit('/').next()?;
    let mut parts = name.splitn(3, '-');
    let _node = parts.next()?;
    let ms = parts.next()?;
    parts.next()?;
    ms.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_tell_what_and_when() {
        assert_eq!(
            wal_written_at_ms("wal/00ff/3-1764567890123-0123456789abcdef.wal"),
            Some(1_764_567_890_123)
        );
        assert_eq!(wal_written_at_ms("wal/00ff/3-0123456789abcdef.wal"), None);
        assert_eq!(wal_written_at_ms(""), None);
        assert_eq!(wal_written_at_ms("wal/x/a-b-c"), None);
        assert_eq!(wal_written_at_ms("seg/00ff/3-1764567890123-x.seg"), None);
        assert!(is_segment("seg/ab/t.0.0.id.clean") && !is_segment("wal/ab/1-2-3.wal"));
        assert!(is_wal("wal/ab/1-2-3.wal"));
        let cleaned = |kind: &str| format!("seg/ab/t.0.0.0123abcd.{kind}");
        assert!(is_cleaned(&cleaned(&cleaned_kind(None))));
        assert!(!is_cleaned("seg/ab/t.0.0.0123abcd.seg"));
        assert_eq!(delete_horizon_ms(&cleaned(&cleaned_kind(None))), None);
        assert_eq!(
            delete_horizon_ms(&cleaned(&cleaned_kind(Some(1_764_567_890_123)))),
            Some(1_764_567_890_123)
        );
        assert_eq!(delete_horizon_ms("wal/ab/1-2-h3.clean"), None);
        assert_eq!(delete_horizon_ms(&cleaned("hx.clean")), None);
    }
}
