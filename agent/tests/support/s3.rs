//! An S3-compatible server for the tests: the one `tests/run` started (FLOE_TEST_S3_ENDPOINT
//! and FLOE_TEST_S3_BUCKET), or else a moto server this process starts once on a free port,
//! with a watchdog shell that stops it when the test process exits.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use floe_common::ObjectStoreUrl;
use object_store::path::Path;
use object_store::ObjectStore;

/// Where the tests' S3 lives.
#[derive(Debug, Clone)]
pub struct S3Target {
    /// `http://127.0.0.1:port`.
    pub endpoint: String,
    /// An existing bucket.
    pub bucket: String,
}

static TARGET: OnceLock<S3Target> = OnceLock::new();

/// The S3 server, started on first use. Blocking: call through `spawn_blocking`.
pub fn target() -> S3Target {
    TARGET.get_or_init(start).clone()
}

/// A store over the S3 server under `prefix`, built the way the roles build it.
pub fn store(target: &S3Target, prefix: &str) -> (Arc<dyn ObjectStore>, Path) {
    let url =
        ObjectStoreUrl::parse(&format!("s3://{}/{prefix}", target.bucket)).expect("valid s3 url");
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        return url
            .build(Some(&target.endpoint))
            .expect("building the s3 store");
    }
    // Without credentials in the environment the builder would ask the EC2 instance metadata
    // service; moto accepts any credentials, so pass dummies explicitly (setting environment
    // variables while other test threads run is not safe).
    let s3 = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(&target.bucket)
        .with_region("us-east-1")
        .with_access_key_id("floe-test")
        .with_secret_access_key("floe-test")
        .with_endpoint(&target.endpoint)
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .build()
        .expect("building the s3 store");
    (Arc::new(s3), Path::from(prefix))
}

fn start() -> S3Target {
    if let (Ok(endpoint), Ok(bucket)) = (
        std::env::var("FLOE_TEST_S3_ENDPOINT"),
        std::env::var("FLOE_TEST_S3_BUCKET"),
    ) {
        if !endpoint.is_empty() && !bucket.is_empty() {
            return S3Target { endpoint, bucket };
        }
    }
    let moto = moto_binary().unwrap_or_else(|| {
        panic!(
            "no S3-compatible server for the tests: set FLOE_TEST_S3_ENDPOINT and \
             FLOE_TEST_S3_BUCKET, or run `bash tests/run` (it installs and starts moto), or \
             provide moto_server in /work/main/.venv/bin or on PATH"
        )
    });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("probing a free port")
        .port();
    // The watchdog stops moto when this test process is gone (static values are never
    // dropped, so nothing else would).
    let script = r#"
"$0" -H 127.0.0.1 -p "$1" >/dev/null 2>&1 &
m=$!
while kill -0 "$2" 2>/dev/null && kill -0 "$m" 2>/dev/null; do sleep 1; done
kill "$m" 2>/dev/null
"#;
    let mut watchdog = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(&moto)
        .arg(port.to_string())
        .arg(std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", moto.display()));
    // Reap the watchdog if it ends early (moto died), so it leaves no zombie.
    std::thread::spawn(move || watchdog.wait());
    let bucket = "floe-agent-tests".to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match http_put(port, &format!("/{bucket}")) {
            Ok(status) if status.contains(" 200") => break,
            Ok(status) => panic!("creating bucket {bucket} on moto: {status}"),
            Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("moto at port {port} did not come up: {e}"),
        }
    }
    eprintln!("started moto S3 ({}) on port {port}", moto.display());
    S3Target {
        endpoint: format!("http://127.0.0.1:{port}"),
        bucket,
    }
}

fn moto_binary() -> Option<PathBuf> {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server");
    if venv.exists() {
        return Some(venv);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("moto_server"))
            .find(|p| p.exists())
    })
}

/// A bodiless HTTP PUT; returns the status line.
fn http_put(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let text = String::from_utf8_lossy(&resp);
    Ok(text.lines().next().unwrap_or_default().to_string())
}
