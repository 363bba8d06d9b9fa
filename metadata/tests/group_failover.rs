//! Two metadata instances on one PostgreSQL: one holds the group-coordinator lease and the
//! other forwards group calls to it over HTTP; when the holder goes away, the other takes
//! the lease, reloads the groups from the database, and the members carry on at their
//! generation.

use std::sync::Arc;
use std::time::Duration;

use floe_metadata::groups::{
    GroupCall, GroupProtocol, GroupReply, Heartbeat, JoinGroup, SyncGroup,
};
use floe_metadata::service::ServiceSettings;
use floe_metadata::testing::TestPostgres;
use floe_metadata::{
    GroupSettings, Metadata, MetadataError, MetadataService, MetadataStore, PostgresStore,
};
use tokio::task::JoinHandle;

struct Instance {
    service: Arc<MetadataService>,
    server: JoinHandle<()>,
}

async fn instance(pg: &str) -> Instance {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let store: Arc<dyn MetadataStore> =
        Arc::new(PostgresStore::connect(pg).await.expect("connect"));
    let settings = ServiceSettings {
        groups: GroupSettings {
            initial_rebalance_delay_ms: 0,
            ..GroupSettings::default()
        },
        advertise_url: Some(url),
        ..ServiceSettings::default()
    };
    let now = Arc::new(|| {
        std::time::SystemTime::UNIX_EPOCH
            .elapsed()
            .map_or(0, |d| d.as_millis() as i64)
    });
    let service = MetadataService::start_with(store, now, Arc::new(|_| {}), settings)
        .await
        .expect("service");
    let app = floe_metadata::http::router(service.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Instance { service, server }
}

fn join(member: &str) -> GroupCall {
    GroupCall::Join(JoinGroup {
        group_id: "g".into(),
        member_id: member.into(),
        group_instance_id: None,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 30_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: vec![GroupProtocol {
            name: "range".into(),
            metadata: b"sub".to_vec(),
        }],
        require_known_member_id: false,
    })
}

fn heartbeat(member: &str, generation: i32) -> GroupCall {
    GroupCall::Heartbeat(Heartbeat {
        group_id: "g".into(),
        generation_id: generation,
        member_id: member.into(),
        group_instance_id: None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_other_instance_takes_over_the_groups() {
    let pg = TestPostgres::start().await;
    let a = instance(pg.url()).await;
    let b = instance(pg.url()).await;
    assert!(
        a.service.groups().coordinator().is_some(),
        "the first instance leads"
    );
    assert!(
        b.service.groups().coordinator().is_none(),
        "only one instance leads"
    );

    // Through B, forwarded to A.
    let GroupReply::Join(j) = b.service.group(join("")).await.expect("join") else {
        panic!("not a join reply");
    };
    assert_eq!((j.error, j.generation_id), (None, 1));
    let member = j.member_id.clone();
    let sync = GroupCall::Sync(SyncGroup {
        group_id: "g".into(),
        generation_id: 1,
        member_id: member.clone(),
        group_instance_id: None,
        protocol_type: None,
        protocol_name: None,
        assignments: vec![(member.clone(), b"p0-p5".to_vec())],
    });
    let GroupReply::Sync(s) = b.service.group(sync.clone()).await.expect("sync") else {
        panic!("not a sync reply");
    };
    assert_eq!((s.error, s.assignment.as_slice()), (None, &b"p0-p5"[..]));
    assert_eq!(
        b.service.group(heartbeat(&member, 1)).await.expect("hb"),
        GroupReply::Done(None)
    );
    // A call forwarded to an instance that does not lead is refused, not bounced on.
    let err = b.service.group_routed(heartbeat(&member, 1), true).await;
    assert!(matches!(err, Err(MetadataError::Unavailable(_))), "{err:?}");

    // A goes away: B takes the lease within a few seconds.
    a.service.step_down_groups().await;
    a.server.abort();
    drop(a.service);
    let mut took_over = false;
    for _ in 0..50 {
        if b.service.groups().coordinator().is_some() {
            took_over = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(took_over, "B never took the group coordinator lease");
    // The member carries on: same generation, same assignment.
    assert_eq!(
        b.service.group(heartbeat(&member, 1)).await.expect("hb"),
        GroupReply::Done(None)
    );
    let GroupReply::Sync(s) = b.service.group(sync).await.expect("sync") else {
        panic!("not a sync reply");
    };
    assert_eq!((s.error, s.assignment.as_slice()), (None, &b"p0-p5"[..]));
    b.server.abort();
}
