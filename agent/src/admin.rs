//! Cluster metadata and topic administration: Metadata, CreateTopics, DeleteTopics,
//! CreatePartitions, DescribeConfigs, AlterConfigs, IncrementalAlterConfigs and
//! DescribeCluster. Floe has no partition leaders: this agent answers as the leader of
//! every partition, and any agent can serve any partition.

use std::collections::BTreeMap;

use floe_metadata::{AgentInfo, MetadataError, TopicSpec};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, BrokerId, CreatePartitionsRequest,
    CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, DescribeClusterRequest, DescribeClusterResponse, DescribeConfigsRequest,
    DescribeConfigsResponse, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, MetadataRequest,
    MetadataResponse, SaslHandshakeResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tracing::info;
use uuid::Uuid;

use crate::catalog::Topic;
use crate::configs::{self, source, ConfigType, TOPIC_CONFIGS};
use crate::dispatch::{ClientInfo, Ctx};
use crate::error::kafka_error;
use crate::fleet;

/// Kafka's longest topic name.
const MAX_TOPIC_NAME: usize = 249;

/// Internal topics of Apache Kafka; their names stay reserved so tools never confuse a user
/// topic for one.
pub fn is_internal(name: &str) -> bool {
    matches!(name, "__consumer_offsets" | "__transaction_state")
}

/// Validates a topic name as Kafka does.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".into());
    }
    if name == "." || name == ".." {
        return Err("topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > MAX_TOPIC_NAME {
        return Err(format!(
            "topic name is longer than {MAX_TOPIC_NAME} characters"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic name contains illegal character {c:?}; legal are [a-zA-Z0-9._-]"
        ));
    }
    Ok(())
}

/// Kafka's `.`/`_` collision rule: `a.b` and `a_b` would share metric names.
fn collides(name: &str, existing: &str) -> bool {
    name != existing && name.replace('.', "_") == existing.replace('.', "_")
}

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

/// The agents a client is told about: those of its zone (named in its client.id), else of
/// the zone of the agent it reached; every agent when that zone has none alive.
fn zone_agents(ctx: &Ctx, client: &ClientInfo) -> Vec<AgentInfo> {
    let zone = client.zone.as_deref().or(ctx.config.zone.as_deref());
    ctx.fleet.for_zone(zone)
}

/// The leader of a partition among `agents` (rendezvous hashing), this agent if none.
fn leader_of(ctx: &Ctx, agents: &[AgentInfo], topic: Uuid, partition: i32) -> BrokerId {
    BrokerId(fleet::leader(agents, topic, partition).unwrap_or(ctx.config.node_id))
}

/// Metadata: the live agents of the client's zone as brokers, each partition led by one of
/// them (spread by rendezvous hashing), cluster id, controller, topics with partitions.
pub async fn metadata(
    ctx: &Ctx,
    req: MetadataRequest,
    version: i16,
    client: &ClientInfo,
) -> MetadataResponse {
    let agents = zone_agents(ctx, client);
    let brokers: Vec<MetadataResponseBroker> = agents
        .iter()
        .map(|a| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(a.node_id))
                .with_host(s(a.host.clone()))
                .with_port(a.port)
                .with_rack(a.zone.clone().map(s))
        })
        .collect();
    // The controller must be one of the listed brokers; this agent when it is.
    let node = if agents.iter().any(|a| a.node_id == ctx.config.node_id) {
        BrokerId(ctx.config.node_id)
    } else {
        BrokerId(agents.first().map_or(ctx.config.node_id, |a| a.node_id))
    };
    // v0: an empty list means all topics; v1+: null means all.
    let wanted = match req.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(t),
    };
    let allow_create = version < 4 || req.allow_auto_topic_creation;
    let mut topics = Vec::new();
    match wanted {
        None => {
            for t in ctx.catalog.all() {
                topics.push(topic_metadata(ctx, &t, &agents));
            }
        }
        Some(list) => {
            for rt in list {
                let resolved = match (&rt.name, rt.topic_id.is_nil()) {
                    (Some(name), _) => {
                        if let Err(_msg) = validate_topic_name(name.as_str()) {
                            Err((
                                ResponseError::InvalidTopicException,
                                Some(name.clone()),
                                Uuid::nil(),
                            ))
                        } else {
                            ctx.topic_or_create(name.as_str(), allow_create)
                                .await
                                .map_err(|e| (e, Some(name.clone()), Uuid::nil()))
                        }
                    }
                    (None, false) => ctx.catalog.lookup_id(rt.topic_id).await.ok_or((
                        ResponseError::UnknownTopicId,
                        None,
                        rt.topic_id,
                    )),
                    (None, true) => Err((ResponseError::InvalidRequest, None, Uuid::nil())),
                };
                match resolved {
                    Ok(t) => topics.push(topic_metadata(ctx, &t, &agents)),
                    Err((e, name, id)) => topics.push(
                        MetadataResponseTopic::default()
                            .with_error_code(e.code())
                            .with_name(name)
                            .with_topic_id(id),
                    ),
                }
            }
        }
    }
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(s(ctx.cluster_id.clone())))
        .with_controller_id(node)
        .with_topics(topics)
}

fn topic_metadata(ctx: &Ctx, t: &Topic, agents: &[AgentInfo]) -> MetadataResponseTopic {
    let partitions = (0..t.partitions)
        .map(|p| {
            let node = leader_of(ctx, agents, t.id, p);
            let epoch = ctx
                .catalog
                .marks(t.id, p)
                .map(|m| m.leader_epoch)
                .unwrap_or(0);
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(node)
                .with_leader_epoch(epoch)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(s(t.name.clone()))))
        .with_topic_id(t.id)
        .with_is_internal(false)
        .with_partitions(partitions)
}

fn effective_configs(
    t_configs: &BTreeMap<String, String>,
    broker_max_message: i32,
) -> Vec<(String, String, i8, ConfigType)> {
    TOPIC_CONFIGS
        .iter()
        .map(|d| match t_configs.get(d.name) {
            Some(v) => (d.name.to_string(), v.clone(), source::TOPIC, d.kind),
            None if d.name == configs::MAX_MESSAGE_BYTES => (
                d.name.to_string(),
                broker_max_message.to_string(),
                source::DEFAULT,
                d.kind,
            ),
            None => (
                d.name.to_string(),
                d.default.to_string(),
                source::DEFAULT,
                d.kind,
            ),
        })
        .collect()
}

/// CreateTopics.
pub async fn create_topics(
    ctx: &Ctx,
    req: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    let existing: Vec<String> = ctx.catalog.all().iter().map(|t| t.name.clone()).collect();
    for t in req.topics {
        let name = t.name.to_string();
        let fail = |e: ResponseError, msg: String| {
            CreatableTopicResult::default()
                .with_name(t.name.clone())
                .with_error_code(e.code())
                .with_error_message(Some(s(msg)))
                .with_num_partitions(-1)
                .with_replication_factor(-1)
        };
        if let Err(msg) = validate_topic_name(&name) {
            results.push(fail(ResponseError::InvalidTopicException, msg));
            continue;
        }
        if is_internal(&name) {
            results.push(fail(
                ResponseError::InvalidTopicException,
                format!("{name} is a reserved internal topic name"),
            ));
            continue;
        }
        if let Some(other) = existing.iter().find(|e| collides(&name, e)) {
            results.push(fail(
                ResponseError::InvalidTopicException,
                format!("topic {name} collides with existing topic {other} ('.' and '_' are interchangeable in metric names)"),
            ));
            continue;
        }
        let partitions = if !t.assignments.is_empty() {
            if t.num_partitions != -1 {
                results.push(fail(
                    ResponseError::InvalidRequest,
                    "both num_partitions and assignments given".into(),
                ));
                continue;
            }
            t.assignments.len() as i32
        } else if t.num_partitions == -1 {
            ctx.config.num_partitions
        } else {
            t.num_partitions
        };
        if partitions < 1 {
            results.push(fail(
                ResponseError::InvalidPartitions,
                "number of partitions must be larger than 0".into(),
            ));
            continue;
        }
        // Durability comes from the object store, not from replicas: any replication factor a
        // client asks for is accepted, and reported as asked.
        if t.replication_factor == 0 || t.replication_factor < -1 {
            results.push(fail(
                ResponseError::InvalidReplicationFactor,
                "replication factor must be larger than 0".into(),
            ));
            continue;
        }
        let mut overrides = BTreeMap::new();
        let mut bad = None;
        for c in &t.configs {
            let Some(v) = &c.value else { continue };
            match configs::validate_topic_config(c.name.as_str(), v.as_str()) {
                Ok(()) => {
                    overrides.insert(c.name.to_string(), v.to_string());
                }
                Err(e) => {
                    bad = Some(e.0);
                    break;
                }
            }
        }
        if let Some(msg) = bad {
            results.push(fail(ResponseError::InvalidConfig, msg));
            continue;
        }
        let rf = if t.replication_factor == -1 {
            1
        } else {
            t.replication_factor
        };
        let spec = TopicSpec {
            name: name.clone(),
            partitions,
            configs: overrides.clone(),
        };
        let outcome = if req.validate_only {
            if ctx.catalog.lookup(&name).await.is_some() {
                Err(MetadataError::TopicExists(name.clone()))
            } else {
                Ok(Uuid::nil())
            }
        } else {
            ctx.metadata.create_topic(spec).await.map(|i| i.id)
        };
        match outcome {
            Ok(id) => {
                if !req.validate_only {
                    info!(topic = %name, partitions, "created topic");
                }
                let cfgs = (version >= 5).then(|| {
                    effective_configs(&overrides, ctx.config.message_max_bytes)
                        .into_iter()
                        .map(|(n, v, src, _)| {
                            CreatableTopicConfigs::default()
                                .with_name(s(n))
                                .with_value(Some(s(v)))
                                .with_config_source(src)
                        })
                        .collect()
                });
                results.push(
                    CreatableTopicResult::default()
                        .with_name(t.name.clone())
                        .with_topic_id(id)
                        .with_num_partitions(partitions)
                        .with_replication_factor(rf)
                        .with_configs(cfgs),
                );
            }
            Err(MetadataError::TopicExists(_)) => results.push(fail(
                ResponseError::TopicAlreadyExists,
                format!("topic '{name}' already exists"),
            )),
            Err(e) => results.push(fail(kafka_error(&e), e.to_string())),
        }
    }
    let _ = ctx.catalog.refresh().await;
    CreateTopicsResponse::default().with_topics(results)
}

/// DeleteTopics (by name, or by id from v6).
pub async fn delete_topics(
    ctx: &Ctx,
    req: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let targets: Vec<(Option<TopicName>, Uuid)> = if version >= 6 {
        req.topics
            .into_iter()
            .map(|t| (t.name, t.topic_id))
            .collect()
    } else {
        req.topic_names
            .into_iter()
            .map(|n| (Some(n), Uuid::nil()))
            .collect()
    };
    let mut out = Vec::with_capacity(targets.len());
    for (name, id) in targets {
        let topic = match (&name, id.is_nil()) {
            (Some(n), _) => ctx
                .catalog
                .lookup(n.as_str())
                .await
                .ok_or(ResponseError::UnknownTopicOrPartition),
            (None, false) => ctx
                .catalog
                .lookup_id(id)
                .await
                .ok_or(ResponseError::UnknownTopicId),
            (None, true) => Err(ResponseError::InvalidRequest),
        };
        let r = DeletableTopicResult::default()
            .with_name(name.clone())
            .with_topic_id(id);
        let r = match topic {
            Err(e) => r.with_error_code(e.code()),
            Ok(t) => match ctx.metadata.delete_topic(&t.name).await {
                Ok(deleted) => {
                    info!(topic = %t.name, "deleted topic");
                    ctx.index.forget_topic(deleted);
                    r.with_name(Some(TopicName(s(t.name.clone()))))
                        .with_topic_id(deleted)
                }
                Err(e) => r
                    .with_error_code(kafka_error(&e).code())
                    .with_error_message(Some(s(e.to_string()))),
            },
        };
        out.push(r);
    }
    let _ = ctx.catalog.refresh().await;
    DeleteTopicsResponse::default().with_responses(out)
}

/// CreatePartitions.
pub async fn create_partitions(
    ctx: &Ctx,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut out = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let r = CreatePartitionsTopicResult::default().with_name(t.name.clone());
        let fail = |r: CreatePartitionsTopicResult, e: ResponseError, m: String| {
            r.with_error_code(e.code()).with_error_message(Some(s(m)))
        };
        let Some(topic) = ctx.catalog.lookup(t.name.as_str()).await else {
            out.push(fail(
                r,
                ResponseError::UnknownTopicOrPartition,
                format!("topic {} does not exist", t.name.as_str()),
            ));
            continue;
        };
        if t.count <= topic.partitions {
            out.push(fail(
                r,
                ResponseError::InvalidPartitions,
                format!(
                    "topic currently has {} partitions, which is higher than the requested {}",
                    topic.partitions, t.count
                ),
            ));
            continue;
        }
        if req.validate_only {
            out.push(r);
            continue;
        }
        match ctx.metadata.create_partitions(&topic.name, t.count).await {
            Ok(_) => out.push(r),
            Err(e) => out.push(fail(r, kafka_error(&e), e.to_string())),
        }
    }
    let _ = ctx.catalog.refresh().await;
    CreatePartitionsResponse::default().with_results(out)
}

fn broker_configs(ctx: &Ctx) -> Vec<(String, String, ConfigType)> {
    let c = &ctx.config;
    vec![
        (
            "auto.create.topics.enable".into(),
            c.auto_create_topics_enable.to_string(),
            ConfigType::Boolean,
        ),
        ("broker.id".into(), c.node_id.to_string(), ConfigType::Int),
        (
            "broker.rack".into(),
            c.zone.clone().unwrap_or_default(),
            ConfigType::String,
        ),
        (
            "default.replication.factor".into(),
            "1".into(),
            ConfigType::Int,
        ),
        (
            "log.cleanup.policy".into(),
            "delete".into(),
            ConfigType::List,
        ),
        ("log.retention.bytes".into(), "-1".into(), ConfigType::Long),
        (
            "log.retention.ms".into(),
            "604800000".into(),
            ConfigType::Long,
        ),
        (
            "message.max.bytes".into(),
            c.message_max_bytes.to_string(),
            ConfigType::Int,
        ),
        ("min.insync.replicas".into(), "1".into(), ConfigType::Int),
        (
            "num.partitions".into(),
            c.num_partitions.to_string(),
            ConfigType::Int,
        ),
        (
            "socket.request.max.bytes".into(),
            c.max_request_bytes.to_string(),
            ConfigType::Int,
        ),
    ]
}

/// DescribeConfigs for topics and brokers.
pub async fn describe_configs(
    ctx: &Ctx,
    req: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let mut results = Vec::with_capacity(req.resources.len());
    for r in req.resources {
        let keys: Option<Vec<String>> = r
            .configuration_keys
            .as_ref()
            .map(|k| k.iter().map(|s| s.to_string()).collect());
        let wanted = |n: &str| keys.as_ref().is_none_or(|k| k.iter().any(|x| x == n));
        let base = DescribeConfigsResult::default()
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name.clone());
        let entry =
            |name: String, value: String, src: i8, kind: ConfigType, default: Option<String>| {
                let mut e = DescribeConfigsResourceResult::default()
                    .with_name(s(name.clone()))
                    .with_value(Some(s(value.clone())))
                    .with_config_source(src)
                    .with_read_only(src != source::TOPIC && r.resource_type == RESOURCE_BROKER)
                    .with_is_sensitive(false);
                if version >= 3 {
                    e = e.with_config_type(kind as i8);
                }
                if req.include_synonyms {
                    let mut syn = vec![DescribeConfigsSynonym::default()
                        .with_name(s(name.clone()))
                        .with_value(Some(s(value)))
                        .with_source(src)];
                    if let (Some(d), true) = (default, src == source::TOPIC) {
                        syn.push(
                            DescribeConfigsSynonym::default()
                                .with_name(s(name))
                                .with_value(Some(s(d)))
                                .with_source(source::DEFAULT),
                        );
                    }
                    e = e.with_synonyms(syn);
                }
                e
            };
        let res = match r.resource_type {
            RESOURCE_TOPIC => match ctx.catalog.lookup(r.resource_name.as_str()).await {
                None => base
                    .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                    .with_error_message(Some(s(format!(
                        "topic {} does not exist",
                        r.resource_name.as_str()
                    )))),
                Some(t) => {
                    let configs = effective_configs(&t.configs, ctx.config.message_max_bytes)
                        .into_iter()
                        .filter(|(n, ..)| wanted(n))
                        .map(|(n, v, src, kind)| {
                            let default = configs::topic_config(&n).map(|d| d.default.to_string());
                            entry(n, v, src, kind, default)
                        })
                        .collect();
                    base.with_configs(configs)
                }
            },
            RESOURCE_BROKER => {
                let configs = broker_configs(ctx)
                    .into_iter()
                    .filter(|(n, ..)| wanted(n))
                    .map(|(n, v, kind)| entry(n, v, source::STATIC_BROKER, kind, None))
                    .collect();
                base.with_configs(configs)
            }
            _ => base
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(s("unsupported resource type"))),
        };
        results.push(res);
    }
    DescribeConfigsResponse::default().with_results(results)
}

/// Applies `change` to a topic's overrides after validation; shared by both alter APIs.
async fn alter_topic(
    ctx: &Ctx,
    name: &str,
    validate_only: bool,
    change: impl FnOnce(
        &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, (ResponseError, String)>,
) -> Result<(), (ResponseError, String)> {
    let topic = ctx.catalog.lookup(name).await.ok_or((
        ResponseError::UnknownTopicOrPartition,
        format!("topic {name} does not exist"),
    ))?;
    let next = change(&topic.configs)?;
    for (k, v) in &next {
        configs::validate_topic_config(k, v).map_err(|e| (ResponseError::InvalidConfig, e.0))?;
    }
    if validate_only {
        return Ok(());
    }
    ctx.metadata
        .set_topic_configs(name, next)
        .await
        .map_err(|e| (kafka_error(&e), e.to_string()))?;
    let _ = ctx.catalog.refresh().await;
    Ok(())
}

fn broker_alter_refused() -> (ResponseError, String) {
    (
        ResponseError::InvalidRequest,
        "broker configs are static in Floe: set them in the agent's configuration".into(),
    )
}

/// AlterConfigs (legacy: the given set replaces every override of the resource).
pub async fn alter_configs(ctx: &Ctx, req: AlterConfigsRequest) -> AlterConfigsResponse {
    use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
    let mut out = Vec::new();
    for r in req.resources {
        let result = match r.resource_type {
            RESOURCE_TOPIC => {
                let new: BTreeMap<String, String> = r
                    .configs
                    .iter()
                    .filter_map(|c| {
                        c.value
                            .as_ref()
                            .map(|v| (c.name.to_string(), v.to_string()))
                    })
                    .collect();
                alter_topic(ctx, r.resource_name.as_str(), req.validate_only, |_| {
                    Ok(new)
                })
                .await
            }
            RESOURCE_BROKER => Err(broker_alter_refused()),
            _ => Err((
                ResponseError::InvalidRequest,
                "unsupported resource type".into(),
            )),
        };
        let resp = AlterConfigsResourceResponse::default()
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name);
        out.push(match result {
            Ok(()) => resp,
            Err((e, m)) => resp
                .with_error_code(e.code())
                .with_error_message(Some(s(m))),
        });
    }
    AlterConfigsResponse::default().with_responses(out)
}

/// IncrementalAlterConfigs: SET (0), DELETE (1), APPEND (2) and SUBTRACT (3) per key.
pub async fn incremental_alter_configs(
    ctx: &Ctx,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
    let mut out = Vec::new();
    for r in req.resources {
        let ops: Vec<(String, i8, Option<String>)> = r
            .configs
            .iter()
            .map(|c| {
                (
                    c.name.to_string(),
                    c.config_operation,
                    c.value.as_ref().map(|v| v.to_string()),
                )
            })
            .collect();
        let result = match r.resource_type {
            RESOURCE_TOPIC => {
                alter_topic(
                    ctx,
                    r.resource_name.as_str(),
                    req.validate_only,
                    |current| {
                        let mut next = current.clone();
                        for (name, op, value) in ops {
                            let def = configs::topic_config(&name).ok_or((
                                ResponseError::InvalidConfig,
                                format!("unknown topic config {name}"),
                            ))?;
                            match (op, value) {
                                (0, Some(v)) => {
                                    next.insert(name, v);
                                }
                                (1, _) => {
                                    next.remove(&name);
                                }
                                (2 | 3, Some(v)) if def.kind == ConfigType::List => {
                                    let cur = next
                                        .get(&name)
                                        .cloned()
                                        .unwrap_or_else(|| def.default.to_string());
                                    let mut items: Vec<String> = cur
                                        .split(',')
                                        .map(str::trim)
                                        .filter(|x| !x.is_empty())
                                        .map(String::from)
                                        .collect();
                                    for item in
                                        v.split(',').map(str::trim).filter(|x| !x.is_empty())
                                    {
                                        if op == 2 {
                                            if !items.iter().any(|i| i == item) {
                                                items.push(item.to_string());
                                            }
                                        } else {
                                            items.retain(|i| i != item);
                                        }
                                    }
                                    next.insert(name, items.join(","));
                                }
                                (2 | 3, Some(_)) => {
                                    return Err((
                                        ResponseError::InvalidConfig,
                                        format!("{name} is not a list config"),
                                    ));
                                }
                                (0 | 2 | 3, None) => {
                                    return Err((
                                        ResponseError::InvalidConfig,
                                        format!("null value for {name}"),
                                    ));
                                }
                                _ => {
                                    return Err((
                                        ResponseError::InvalidConfig,
                                        format!("unknown operation {op}"),
                                    ))
                                }
                            }
                        }
                        Ok(next)
                    },
                )
                .await
            }
            RESOURCE_BROKER => Err(broker_alter_refused()),
            _ => Err((
                ResponseError::InvalidRequest,
                "unsupported resource type".into(),
            )),
        };
        let resp = AlterConfigsResourceResponse::default()
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name);
        out.push(match result {
            Ok(()) => resp,
            Err((e, m)) => resp
                .with_error_code(e.code())
                .with_error_message(Some(s(m))),
        });
    }
    IncrementalAlterConfigsResponse::default().with_responses(out)
}

/// DescribeCluster.
pub fn describe_cluster(
    ctx: &Ctx,
    req: DescribeClusterRequest,
    client: &ClientInfo,
) -> DescribeClusterResponse {
    // endpoint_type 1 = brokers, 2 = controllers (KIP-919). Floe's agents are both.
    let agents = zone_agents(ctx, client);
    let node = if agents.iter().any(|a| a.node_id == ctx.config.node_id) {
        BrokerId(ctx.config.node_id)
    } else {
        BrokerId(agents.first().map_or(ctx.config.node_id, |a| a.node_id))
    };
    if req.endpoint_type != 1 && req.endpoint_type != 2 {
        return DescribeClusterResponse::default()
            .with_error_code(ResponseError::UnsupportedEndpointType.code())
            .with_cluster_id(s(ctx.cluster_id.clone()));
    }
    DescribeClusterResponse::default()
        .with_endpoint_type(req.endpoint_type)
        .with_cluster_id(s(ctx.cluster_id.clone()))
        .with_controller_id(node)
        .with_brokers(
            agents
                .iter()
                .map(|a| {
                    DescribeClusterBroker::default()
                        .with_broker_id(BrokerId(a.node_id))
                        .with_host(s(a.host.clone()))
                        .with_port(a.port)
                        .with_rack(a.zone.clone().map(s))
                })
                .collect(),
        )
}

/// DescribeTopicPartitions (KIP-966): topics (all when none are named) with their
/// partitions, paged by `response_partition_limit` and a cursor, in topic-name order.
pub async fn describe_topic_partitions(
    ctx: &Ctx,
    req: DescribeTopicPartitionsRequest,
    client: &ClientInfo,
) -> DescribeTopicPartitionsResponse {
    use kafka_protocol::messages::describe_topic_partitions_response::{
        Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
    };
    let agents = zone_agents(ctx, client);
    let mut names: Vec<String> = if req.topics.is_empty() {
        ctx.catalog.all().iter().map(|t| t.name.clone()).collect()
    } else {
        req.topics.iter().map(|t| t.name.to_string()).collect()
    };
    names.sort();
    names.dedup();
    let (cursor_topic, cursor_partition) = match &req.cursor {
        Some(c) => (Some(c.topic_name.to_string()), c.partition_index.max(0)),
        None => (None, 0),
    };
    let limit = if req.response_partition_limit <= 0 {
        2000
    } else {
        req.response_partition_limit as usize
    };
    let mut budget = limit;
    let mut topics = Vec::new();
    let mut next_cursor = None;
    for name in names {
        if cursor_topic.as_ref().is_some_and(|c| name < *c) {
            continue;
        }
        let tn = TopicName(s(name.clone()));
        let Some(t) = ctx.catalog.lookup(&name).await else {
            topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_name(Some(tn))
                    .with_error_code(ResponseError::UnknownTopicOrPartition.code()),
            );
            continue;
        };
        if budget == 0 {
            next_cursor = Some(
                Cursor::default()
                    .with_topic_name(tn)
                    .with_partition_index(0),
            );
            break;
        }
        let first = if cursor_topic.as_deref() == Some(name.as_str()) {
            cursor_partition
        } else {
            0
        };
        let mut partitions = Vec::new();
        let mut p = first;
        while p < t.partitions {
            if budget == 0 {
                next_cursor = Some(
                    Cursor::default()
                        .with_topic_name(tn.clone())
                        .with_partition_index(p),
                );
                break;
            }
            let epoch = ctx
                .catalog
                .marks(t.id, p)
                .map(|m| m.leader_epoch)
                .unwrap_or(0);
            let node = leader_of(ctx, &agents, t.id, p);
            partitions.push(
                DescribeTopicPartitionsResponsePartition::default()
                    .with_partition_index(p)
                    .with_leader_id(node)
                    .with_leader_epoch(epoch)
                    .with_replica_nodes(vec![node])
                    .with_isr_nodes(vec![node])
                    .with_eligible_leader_replicas(Some(Vec::new()))
                    .with_last_known_elr(Some(Vec::new())),
            );
            budget -= 1;
            p += 1;
        }
        topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(tn))
                .with_topic_id(t.id)
                .with_partitions(partitions),
        );
        if next_cursor.is_some() {
            break;
        }
    }
    DescribeTopicPartitionsResponse::default()
        .with_topics(topics)
        .with_next_cursor(next_cursor)
}

/// SaslHandshake on a listener without SASL: Kafka answers ILLEGAL_SASL_STATE and lists no
/// mechanism, so a client configured for SASL fails with a clear error instead of a
/// dropped connection.
pub fn sasl_handshake() -> SaslHandshakeResponse {
    SaslHandshakeResponse::default().with_error_code(ResponseError::IllegalSaslState.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name(".").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("has space").is_err());
        assert!(validate_topic_name("slash/no").is_err());
        assert!(validate_topic_name(&"a".repeat(249)).is_ok());
        assert!(validate_topic_name(&"a".repeat(250)).is_err());
    }

    #[test]
    fn dot_and_underscore_collide() {
        assert!(collides("a.b", "a_b"));
        assert!(!collides("a.b", "a.b"));
        assert!(!collides("a.b", "a-b"));
    }
}
