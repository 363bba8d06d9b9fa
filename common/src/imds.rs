//! The zone of an agent on EC2, from the instance metadata service (IMDSv2: a session token
//! first, then the metadata). Off EC2 the first request times out within a second and the
//! agent carries on without a zone. The standard AWS variables apply:
//! `AWS_EC2_METADATA_DISABLED=true` skips the lookup and `AWS_EC2_METADATA_SERVICE_ENDPOINT`
//! points it elsewhere.

use std::time::Duration;

use tracing::debug;

const DEFAULT_ENDPOINT: &str = "http://169.254.169.254";

/// The availability zone (e.g. `us-east-1a`), or `None` when there is no IMDS or it says
/// nothing usable.
pub async fn availability_zone() -> Option<String> {
    if std::env::var("AWS_EC2_METADATA_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
        return None;
    }
    let endpoint = std::env::var("AWS_EC2_METADATA_SERVICE_ENDPOINT")
        .unwrap_or_else(|_| DEFAULT_ENDPOINT.to_string());
    availability_zone_at(endpoint.trim_end_matches('/')).await
}

async fn availability_zone_at(endpoint: &str) -> Option<String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .no_proxy()
        .build()
        .ok()?;
    let token = http
        .put(format!("{endpoint}/latest/api/token"))
        .header("X-aws-ec2-metadata-token-ttl-seconds", "60")
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| debug!(error = %e, "no IMDSv2 token"))
        .ok()?
        .text()
        .await
        .ok()?;
    let zone = http
        .get(format!(
            "{endpoint}/latest/meta-data/placement/availability-zone"
        ))
        .header("X-aws-ec2-metadata-token", token.trim())
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| debug!(error = %e, "no availability zone from IMDS"))
        .ok()?
        .text()
        .await
        .ok()?;
    let zone = zone.trim();
    let plausible = !zone.is_empty()
        && zone.len() <= 64
        && zone.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    plausible.then(|| zone.to_string())
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::{get, put};
    use axum::Router;

    use super::*;

    /// A stand-in for IMDSv2: a token, and the zone only for requests that present it.
    async fn fake_imds(zone: &'static str) -> String {
        let app = Router::new()
            .route(
                "/latest/api/token",
                put(|h: HeaderMap| async move {
                    if h.contains_key("x-aws-ec2-metadata-token-ttl-seconds") {
                        (StatusCode::OK, "tok-1")
                    } else {
                        (StatusCode::BAD_REQUEST, "")
                    }
                }),
            )
            .route(
                "/latest/meta-data/placement/availability-zone",
                get(move |h: HeaderMap| async move {
                    match h.get("x-aws-ec2-metadata-token") {
                        Some(t) if t == "tok-1" => (StatusCode::OK, zone),
                        _ => (StatusCode::UNAUTHORIZED, ""),
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn zone_comes_from_imdsv2_with_a_token() {
        let url = fake_imds("us-east-1b\n").await;
        assert_eq!(
            availability_zone_at(&url).await.as_deref(),
            Some("us-east-1b")
        );
    }

    #[tokio::test]
    async fn garbage_or_no_imds_means_no_zone() {
        let url = fake_imds("<html>not a zone</html>").await;
        assert_eq!(availability_zone_at(&url).await, None);
        // Nothing listens there: refused at once.
        assert_eq!(availability_zone_at("http://127.0.0.1:9").await, None);
    }
}
