//! Test support: a throw-away PostgreSQL database for the store conformance suite, agent
//! tests and benchmarks. Compiled for this crate's tests and, through the `testing` feature,
//! for other crates' tests.
//!
//! With `FLOE_TEST_PG_URL` set (a server URL such as `postgres://postgres@127.0.0.1:5432/postgres`)
//! each [`TestPostgres`] is a fresh database on that server. Otherwise the process starts its
//! own cluster with the local PostgreSQL binaries (`initdb`, `pg_ctl`, run as the `postgres`
//! OS user because initdb refuses root), shared by the `TestPostgres` values alive at the same
//! time and stopped when the last one is dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, Weak};

use sqlx::Connection;

/// Where Debian installs PostgreSQL 15's server binaries.
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A fresh, empty PostgreSQL database that lives as long as this value.
pub struct TestPostgres {
    url: String,
    /// Connection URL of the server's maintenance database, used to drop ours.
    admin_url: String,
    db_name: String,
    /// Keeps the local cluster running while this database exists (None: external server).
    _cluster: Option<Arc<LocalCluster>>,
}

impl TestPostgres {
    /// Creates a uniquely named database, starting a local cluster if `FLOE_TEST_PG_URL` is
    /// unset and none is running in this process. Panics if PostgreSQL cannot be started;
    /// this is test code.
    pub async fn start() -> TestPostgres {
        let (admin_url, cluster) = match std::env::var("FLOE_TEST_PG_URL") {
            Ok(url) if !url.is_empty() => (url, None),
            _ => {
                let cluster = tokio::task::spawn_blocking(LocalCluster::shared)
                    .await
                    .expect("starting the local postgres cluster panicked");
                (cluster.url("postgres"), Some(cluster))
            }
        };
        let db_name = format!("floe_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("connecting to test postgres {admin_url}: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db_name}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("creating test database {db_name}: {e}"));
        let _ = conn.close().await;
        TestPostgres {
            url: with_database(&admin_url, &db_name),
            admin_url,
            db_name,
            _cluster: cluster,
        }
    }

    /// Connection URL of the test database.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        // Best effort; psql keeps Drop synchronous. FORCE closes pools still connected.
        let psql = Path::new(PG_BIN).join("psql");
        let psql = if psql.exists() {
            psql
        } else {
            PathBuf::from("psql")
        };
        let _ = Command::new(psql)
            .arg(&self.admin_url)
            .args(["-q", "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.db_name
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Replaces the database name of a `postgres://` URL, keeping any query string.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(query) => format!("{host_part}/{db}?{query}"),
        None => format!("{host_part}/{db}"),
    }
}

/// A PostgreSQL cluster in a temporary directory, on a free loopback port, with fsync off
/// (tests trade durability for speed). Stopped and removed on drop.
struct LocalCluster {
    dir: PathBuf,
    port: u16,
}

/// The cluster shared by this process's live `TestPostgres` values.
static SHARED: Mutex<Weak<LocalCluster>> = Mutex::new(Weak::new());

impl LocalCluster {
    /// The running shared cluster, or a new one. Blocking: call from `spawn_blocking`.
    fn shared() -> Arc<LocalCluster> {
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(cluster) = shared.upgrade() {
            return cluster;
        }
        let cluster = Arc::new(LocalCluster::start());
        *shared = Arc::downgrade(&cluster);
        cluster
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    fn start() -> LocalCluster {
        let dir =
            std::env::temp_dir().join(format!("floe-test-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).expect("creating a temp dir for postgres");
        run(Command::new("chown").arg("postgres:").arg(&dir));
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(Path::new(PG_BIN).join("initdb"))
            .arg("-D")
            .arg(dir.join("data"))
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ]));
        // The port is free when probed but may be taken before postgres binds it: retry.
        for _ in 0..5 {
            let port = free_port();
            let status = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(Path::new(PG_BIN).join("pg_ctl"))
                .arg("-D")
                .arg(dir.join("data"))
                .arg("-l")
                .arg(dir.join("log"))
                .args(["-w", "-t", "30", "-o"])
                .arg(format!(
                    "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off \
                     -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
                    dir.display()
                ))
                .arg("start")
                .stdout(Stdio::null())
                .status()
                .expect("running pg_ctl start");
            if status.success() {
                return LocalCluster { dir, port };
            }
        }
        let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
        panic!("postgres did not start in {}:\n{log}", dir.display());
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(Path::new(PG_BIN).join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("probing a free loopback port")
}

fn run(command: &mut Command) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(test)]
mod unit {
    use super::with_database;

    #[test]
    fn replaces_the_database_of_a_url() {
        assert_eq!(
            with_database("postgres://u@h:1/postgres", "x"),
            "postgres://u@h:1/x"
        );
        assert_eq!(with_database("postgres://u@h:1", "x"), "postgres://u@h:1/x");
        assert_eq!(
            with_database("postgres://u:p@h:1/db?sslmode=disable", "x"),
            "postgres://u:p@h:1/x?sslmode=disable"
        );
    }
}
