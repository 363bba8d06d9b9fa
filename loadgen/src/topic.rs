//! Creates the bench topic with the requested partitions (replication factor 1: Floe takes
//! its durability from the object store; against Kafka, pass an existing topic with --topic).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::{BenchConfig, LoadgenError};

pub fn create(cfg: &BenchConfig, topic: &str) -> Result<(), LoadgenError> {
    create_named(&cfg.client_config(), topic, cfg.partitions)
}

/// Creates `topic` with `partitions` partitions (an existing one is fine).
pub fn create_named(
    client: &rdkafka::ClientConfig,
    topic: &str,
    partitions: i32,
) -> Result<(), LoadgenError> {
    let admin: AdminClient<DefaultClientContext> = client.create()?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let fut = admin.create_topics([&new], &opts);
    // The future is completed by librdkafka's own thread; any executor can wait for it.
    let results = match tokio::runtime::Handle::try_current() {
        Ok(h) => h.block_on(fut),
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(fut),
    }?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(LoadgenError::Config(format!(
                    "creating topic {name}: {code}"
                )))
            }
        }
    }
    Ok(())
}
