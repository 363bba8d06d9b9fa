//! Floe's counters before and after a run: the agents' `/metrics` (Prometheus text) over a
//! plain HTTP/1.0 GET, and the CPU time of local Floe processes from `/proc/<pid>/stat`.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::LoadgenError;

/// Sums of the counters `floe cost` needs, over every scraped agent.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Counters {
    pub put_requests: f64,
    pub get_requests: f64,
    pub delete_requests: f64,
    pub put_bytes: f64,
    pub get_bytes: f64,
    pub wal_objects: f64,
    pub metadata_commits: f64,
    pub produce_bytes: f64,
    pub fetch_bytes: f64,
    /// `floe_process_cpu_seconds` (or the standard `process_cpu_seconds_total`) when exported.
    pub process_cpu_seconds: Option<f64>,
    /// `floe_cross_zone_bytes_total`, both directions, when exported.
    pub cross_zone_bytes: Option<f64>,
}

/// One sample line: name, labels text (without braces), value.
fn parse_line(line: &str) -> Option<(&str, &str, f64)> {
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let (series, rest) = match line.find('{') {
        Some(i) => {
            let close = line[i..].find('}')? + i;
            ((&line[..i], &line[i + 1..close]), &line[close + 1..])
        }
        None => {
            let sp = line.find(' ')?;
            ((&line[..sp], ""), &line[sp..])
        }
    };
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some((series.0, series.1, value))
}

fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    labels.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

/// Folds a Prometheus text exposition into [`Counters`].
pub fn parse_metrics(text: &str, into: &mut Counters) {
    for (name, labels, v) in text.lines().filter_map(parse_line) {
        match name {
            "floe_object_store_requests_total" => match label(labels, "op") {
                Some("put") => into.put_requests += v,
                Some("get") => into.get_requests += v,
                Some("delete") => into.delete_requests += v,
                _ => {}
            },
            "floe_object_store_bytes_total" => match label(labels, "op") {
                Some("put") => into.put_bytes += v,
                Some("get") => into.get_bytes += v,
                _ => {}
            },
            "floe_wal_objects_total" => into.wal_objects += v,
            "floe_produce_commit_seconds_count" => into.metadata_commits += v,
            "floe_produce_bytes_total" => into.produce_bytes += v,
            "floe_fetch_bytes_total" => into.fetch_bytes += v,
            "process_cpu_seconds_total" | "floe_process_cpu_seconds" => {
                *into.process_cpu_seconds.get_or_insert(0.0) += v;
            }
            "floe_cross_zone_bytes_total" => {
                *into.cross_zone_bytes.get_or_insert(0.0) += v;
            }
            _ => {}
        }
    }
}

/// GET http://addr/metrics with HTTP/1.0 (the server closes the connection after replying).
pub fn fetch_metrics(addr: &str) -> Result<String, LoadgenError> {
    let err = |reason: String| LoadgenError::Scrape {
        addr: addr.to_string(),
        reason,
    };
    let sock = addr
        .to_socket_addrs()
        .map_err(|e| err(e.to_string()))?
        .next()
        .ok_or_else(|| err("no address".into()))?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(5))
        .map_err(|e| err(e.to_string()))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut body = Vec::new();
    // /metrics is a few tens of KiB; bound what we read.
    s.take(16 << 20).read_to_end(&mut body)?;
    let text = String::from_utf8_lossy(&body);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| err("malformed HTTP response".into()))?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(err(format!("HTTP status line {status:?}")));
    }
    Ok(body.to_string())
}

/// utime + stime of a process, in seconds, from `/proc/<pid>/stat` (fields 14 and 15, in
/// clock ticks; Linux's USER_HZ is 100).
pub fn proc_cpu_seconds(stat: &str) -> Option<f64> {
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Everything read at one instant.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub counters: Counters,
    /// Summed CPU seconds of `--floe-pid` processes (None without pids).
    pub proc_cpu_seconds: Option<f64>,
    pub scraped: bool,
}

impl Snapshot {
    pub fn take(admin: &[String], pids: &[u32]) -> Result<Snapshot, LoadgenError> {
        let mut s = Snapshot {
            scraped: !admin.is_empty(),
            ..Default::default()
        };
        for a in admin {
            parse_metrics(&fetch_metrics(a)?, &mut s.counters);
        }
        for pid in pids {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
            let cpu = proc_cpu_seconds(&stat)
                .ok_or_else(|| LoadgenError::Config(format!("unreadable /proc/{pid}/stat")))?;
            *s.proc_cpu_seconds.get_or_insert(0.0) += cpu;
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"# HELP floe_object_store_requests Object-store requests by operation and purpose.
# TYPE floe_object_store_requests counter
floe_object_store_requests_total{op="put",purpose="wal",outcome="ok"} 25
floe_object_store_requests_total{op="put",purpose="wal",outcome="error"} 2
floe_object_store_requests_total{op="get",purpose="fetch",outcome="ok"} 3
floe_object_store_bytes_total{op="put",purpose="wal",outcome="ok"} 209715200
floe_wal_objects_total 25
floe_produce_commit_seconds_sum 0.25
floe_produce_commit_seconds_count 25
floe_produce_bytes_total 200000000
# EOF
"#;

    #[test]
    fn counters_from_prometheus_text() {
        let mut c = Counters::default();
        parse_metrics(SAMPLE, &mut c);
        assert_eq!(c.put_requests, 27.0); // every billed attempt, errors included
        assert_eq!(c.get_requests, 3.0);
        assert_eq!(c.put_bytes, 209_715_200.0);
        assert_eq!(c.wal_objects, 25.0);
        assert_eq!(c.metadata_commits, 25.0);
        assert_eq!(c.produce_bytes, 2e8);
        assert_eq!(c.process_cpu_seconds, None);
        // Two agents sum.
        parse_metrics(SAMPLE, &mut c);
        assert_eq!(c.wal_objects, 50.0);
    }

    #[test]
    fn proc_stat_cpu() {
        let stat =
            "1234 (floe (x) y) S 1 1234 1234 0 -1 4194560 2000 0 0 0 250 50 0 0 20 0 9 0 100 0 0";
        assert_eq!(proc_cpu_seconds(stat), Some(3.0));
        assert_eq!(proc_cpu_seconds("garbage"), None);
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let mut c = Counters::default();
        parse_metrics(
            "floe_wal_objects_total\nfloe_wal_objects_total x\n{bad\n",
            &mut c,
        );
        assert_eq!(c, Counters::default());
    }
}
