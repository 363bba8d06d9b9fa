//! A minimal Kafka client over one `TcpStream`: typed requests can be pipelined (`send`
//! several, then `recv` each in the same order, which also checks that responses come back
//! in request order), and raw bytes can be written for bad-frame tests.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::list_offsets_response::ListOffsetsPartitionResponse;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse, MetadataRequest,
    MetadataResponse, ProduceRequest, ProduceResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

/// Longest a test waits for any single response or close.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Request versions the tests speak (Fetch v12 is the last by topic name).
pub const PRODUCE_V: i16 = 9;
/// Fetch by topic name.
pub const FETCH_V: i16 = 12;
/// Fetch by topic id (the newest the agent serves).
pub const FETCH_BY_ID_V: i16 = 17;
/// ListOffsets.
pub const LIST_OFFSETS_V: i16 = 6;
/// Metadata.
pub const METADATA_V: i16 = 12;
/// CreateTopics.
pub const CREATE_TOPICS_V: i16 = 7;
/// ApiVersions.
pub const API_VERSIONS_V: i16 = 3;

/// ListOffsets special timestamps.
pub const LATEST: i64 = -1;
/// ListOffsets special timestamps.
pub const EARLIEST: i64 = -2;

/// One Kafka connection.
pub struct Client {
    stream: TcpStream,
    next_correlation_id: i32,
    client_id: String,
}

/// A request sent and not yet answered.
#[must_use = "read the response with Client::recv"]
pub struct Pending<R: Request> {
    correlation_id: i32,
    version: i16,
    _request: PhantomData<R>,
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

impl Client {
    /// Connects to an agent.
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr))
            .await
            .expect("connect timed out")
            .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
        stream.set_nodelay(true).expect("nodelay");
        Client {
            stream,
            next_correlation_id: 1,
            client_id: "floe-agent-tests".to_string(),
        }
    }

    /// Sends later requests with this `client.id`.
    pub fn set_client_id(&mut self, client_id: &str) {
        self.client_id = client_id.to_string();
    }

    /// Encodes and writes one request frame.
    pub async fn send<R: Request>(&mut self, req: &R, version: i16) -> Pending<R> {
        let key = ApiKey::try_from(R::KEY).expect("known api key");
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(s(&self.client_id)));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header
            .encode(&mut buf, key.request_header_version(version))
            .expect("encoding request header");
        req.encode(&mut buf, version).expect("encoding request");
        let len = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        self.write_raw(&buf)
            .await
            .unwrap_or_else(|e| panic!("writing {key:?} request: {e}"));
        Pending {
            correlation_id,
            version,
            _request: PhantomData,
        }
    }

    /// Reads the next response, which must answer `pending`.
    pub async fn recv<R: Request>(&mut self, pending: Pending<R>) -> R::Response {
        let key = ApiKey::try_from(R::KEY).expect("known api key");
        let mut frame = self.read_frame().await.unwrap_or_else(|| {
            panic!(
                "connection closed before the {key:?} response (correlation id {})",
                pending.correlation_id
            )
        });
        let header =
            ResponseHeader::decode(&mut frame, key.response_header_version(pending.version))
                .expect("decoding response header");
        assert_eq!(
            header.correlation_id, pending.correlation_id,
            "responses must come back in request order"
        );
        let resp =
            R::Response::decode(&mut frame, pending.version).expect("decoding response body");
        assert!(
            !frame.has_remaining(),
            "{} trailing bytes after the {key:?} response",
            frame.remaining()
        );
        resp
    }

    /// Sends one request and waits for its response.
    pub async fn call<R: Request>(&mut self, req: &R, version: i16) -> R::Response {
        let p = self.send(req, version).await;
        self.recv(p).await
    }

    /// Writes bytes as they are.
    pub async fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// The next response frame without its length prefix; `None` when the agent closed the
    /// connection (EOF or reset).
    pub async fn read_frame(&mut self) -> Option<Bytes> {
        tokio::time::timeout(IO_TIMEOUT, async {
            let len = self.stream.read_i32().await.ok()?;
            assert!(len >= 0, "negative response length {len}");
            let mut buf = vec![0u8; len as usize];
            self.stream.read_exact(&mut buf).await.ok()?;
            Some(Bytes::from(buf))
        })
        .await
        .expect("no response and no close within the timeout")
    }

    /// Asserts that the agent closes the connection without answering.
    pub async fn expect_closed(&mut self) {
        let mut buf = [0u8; 64];
        let r = tokio::time::timeout(IO_TIMEOUT, self.stream.read(&mut buf))
            .await
            .expect("the agent neither answered nor closed the connection");
        match r {
            Ok(0) | Err(_) => {}
            Ok(n) => panic!("expected the connection closed, got {n} bytes"),
        }
    }

    // ---- typed helpers ----

    /// ApiVersions.
    pub async fn api_versions(&mut self) -> ApiVersionsResponse {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(s("floe-agent-tests"))
            .with_client_software_version(s("1"));
        self.call(&req, API_VERSIONS_V).await
    }

    /// CreateTopics of one topic; asserts success and returns its topic id.
    pub async fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> Uuid {
        let resp = self.create_topics(name, partitions, configs).await;
        let t = &resp.topics[0];
        assert_eq!(
            t.error_code, 0,
            "create topic {name}: {:?}",
            t.error_message
        );
        assert!(!t.topic_id.is_nil());
        t.topic_id
    }

    /// CreateTopics of one topic, response as is.
    pub async fn create_topics(
        &mut self,
        name: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> CreateTopicsResponse {
        let topic = CreatableTopic::default()
            .with_name(TopicName(s(name)))
            .with_num_partitions(partitions)
            .with_replication_factor(-1)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(s(k))
                            .with_value(Some(s(v)))
                    })
                    .collect(),
            );
        let req = CreateTopicsRequest::default().with_topics(vec![topic]);
        self.call(&req, CREATE_TOPICS_V).await
    }

    /// Metadata for `topics` (None: all topics).
    pub async fn metadata(
        &mut self,
        topics: Option<&[&str]>,
        allow_create: bool,
    ) -> MetadataResponse {
        let req = MetadataRequest::default()
            .with_topics(topics.map(|ts| {
                ts.iter()
                    .map(|t| MetadataRequestTopic::default().with_name(Some(TopicName(s(t)))))
                    .collect()
            }))
            .with_allow_auto_topic_creation(allow_create);
        self.call(&req, METADATA_V).await
    }

    /// Produce with acks=-1; asserts the answer for one partition and returns it.
    pub async fn produce_one(
        &mut self,
        topic: &str,
        partition: i32,
        records: Bytes,
    ) -> PartitionProduceResponse {
        let resp = self
            .call(&produce(topic, vec![(partition, records)]), PRODUCE_V)
            .await;
        produce_partition(&resp, topic, partition).clone()
    }

    /// Fetch of one partition without waiting.
    pub async fn fetch_one(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        partition_max_bytes: i32,
    ) -> PartitionData {
        let req = fetch(
            topic,
            &[(partition, offset, partition_max_bytes)],
            0,
            0,
            i32::MAX,
        );
        let resp = self.call(&req, FETCH_V).await;
        fetch_partition(&resp, topic, partition).clone()
    }

    /// ListOffsets of one partition; asserts no error.
    pub async fn list_offset(
        &mut self,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> ListOffsetsPartitionResponse {
        let resp = self
            .call(&list_offsets(topic, partition, timestamp), LIST_OFFSETS_V)
            .await;
        assert_eq!(resp.topics.len(), 1);
        assert_eq!(resp.topics[0].partitions.len(), 1);
        let p = resp.topics[0].partitions[0].clone();
        assert_eq!(
            p.error_code, 0,
            "list offsets {topic}/{partition} {timestamp}"
        );
        p
    }

    /// The high watermark by ListOffsets latest.
    pub async fn high_watermark(&mut self, topic: &str, partition: i32) -> i64 {
        self.list_offset(topic, partition, LATEST).await.offset
    }
}

// ---- request builders ----

/// A Produce request with acks=-1, one topic, `(partition, records)` in order.
pub fn produce(topic: &str, parts: Vec<(i32, Bytes)>) -> ProduceRequest {
    let data = TopicProduceData::default()
        .with_name(TopicName(s(topic)))
        .with_partition_data(
            parts
                .into_iter()
                .map(|(p, records)| {
                    PartitionProduceData::default()
                        .with_index(p)
                        .with_records(Some(records))
                })
                .collect(),
        );
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![data])
}

/// A Fetch (v4-12, by name) of `(partition, fetch_offset, partition_max_bytes)`.
pub fn fetch(
    topic: &str,
    parts: &[(i32, i64, i32)],
    max_wait_ms: i32,
    min_bytes: i32,
    max_bytes: i32,
) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(min_bytes)
        .with_max_bytes(max_bytes)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(s(topic)))
            .with_partitions(fetch_partitions(parts))])
}

/// A Fetch (v13+, by topic id).
pub fn fetch_by_id(topic_id: Uuid, parts: &[(i32, i64, i32)], max_bytes: i32) -> FetchRequest {
    FetchRequest::default()
        .with_max_bytes(max_bytes)
        .with_topics(vec![FetchTopic::default()
            .with_topic_id(topic_id)
            .with_partitions(fetch_partitions(parts))])
}

fn fetch_partitions(parts: &[(i32, i64, i32)]) -> Vec<FetchPartition> {
    parts
        .iter()
        .map(|&(p, offset, max)| {
            FetchPartition::default()
                .with_partition(p)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(max)
        })
        .collect()
}

/// A ListOffsets of one partition.
pub fn list_offsets(topic: &str, partition: i32, timestamp: i64) -> ListOffsetsRequest {
    ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(timestamp)])])
}

// ---- response accessors ----

/// The answer for one partition of a Produce response.
pub fn produce_partition<'a>(
    resp: &'a ProduceResponse,
    topic: &str,
    partition: i32,
) -> &'a PartitionProduceResponse {
    resp.responses
        .iter()
        .filter(|t| t.name.as_str() == topic)
        .flat_map(|t| t.partition_responses.iter())
        .find(|p| p.index == partition)
        .unwrap_or_else(|| panic!("no produce answer for {topic}/{partition}: {resp:?}"))
}

/// The answer for one partition of a Fetch response (by name or, v13+, the only topic).
pub fn fetch_partition<'a>(
    resp: &'a FetchResponse,
    topic: &str,
    partition: i32,
) -> &'a PartitionData {
    assert_eq!(resp.error_code, 0, "fetch error");
    resp.responses
        .iter()
        .filter(|t| t.topic.as_str() == topic || t.topic.is_empty())
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition_index == partition)
        .unwrap_or_else(|| panic!("no fetch answer for {topic}/{partition}: {resp:?}"))
}

/// The records of a fetch answer (empty when none).
pub fn records(p: &PartitionData) -> Bytes {
    p.records.clone().unwrap_or_default()
}

/// ListOffsets response of one partition.
pub fn list_offsets_partition(resp: &ListOffsetsResponse) -> &ListOffsetsPartitionResponse {
    &resp.topics[0].partitions[0]
}
