//! The bill: workload + ratios + prices → one line per item, each with its formula.
//!
//! Units: data rates in MiB/s and GiB; "GB" in AWS prices is taken as GiB (see the prices
//! file). A month is `hours_per_month` (730) hours of 3,600 s.

use crate::prices::Prices;
use crate::CostError;

const MIB_PER_GIB: f64 = 1024.0;

/// What the cluster must carry.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Bytes produced per second, MiB/s (1,024 = 1 GiB/s).
    pub ingest_mibps: f64,
    /// How many times each produced byte is read by consumers.
    pub fanout: f64,
    pub retention_days: f64,
    pub zones: u32,
    pub region: String,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            ingest_mibps: 1024.0,
            fanout: 1.0,
            retention_days: 7.0,
            zones: 3,
            region: "us-east-1".into(),
        }
    }
}

/// Sizing assumptions that are not prices. Each is printed in the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Assumptions {
    /// Floe's WAL object size at full load (`flush_bytes`, 8 MiB by default).
    pub wal_object_mib: f64,
    /// Size of the objects the compactor writes.
    pub compacted_object_mib: f64,
    /// Fraction of an instance's baseline network planned for steady load (the rest is
    /// headroom for catch-up reads and zone loss).
    pub network_utilisation: f64,
    /// Fraction of an agent's vCPUs planned for steady load.
    pub cpu_utilisation: f64,
    /// Kafka's replication factor (classic: 3).
    pub kafka_replication_factor: u32,
    /// Fullest an EBS volume is planned to get: provisioned = stored / this.
    pub ebs_max_fill: f64,
}

impl Default for Assumptions {
    fn default() -> Self {
        Assumptions {
            wal_object_mib: 8.0,
            compacted_object_mib: 64.0,
            network_utilisation: 0.5,
            cpu_utilisation: 0.6,
            kafka_replication_factor: 3,
            ebs_max_fill: 0.7,
        }
    }
}

/// Where a ratio came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Default,
    Measured,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::Measured => "measured by floe bench",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratio {
    pub value: f64,
    pub source: Source,
}

impl Ratio {
    pub fn default_value(value: f64) -> Ratio {
        Ratio {
            value,
            source: Source::Default,
        }
    }
    pub fn measured(value: f64) -> Ratio {
        Ratio {
            value,
            source: Source::Measured,
        }
    }
}

/// Per-byte behaviour of Floe: defaults from the design, replaced by `floe bench` measurements.
#[derive(Debug, Clone, PartialEq)]
pub struct Ratios {
    /// WAL object PUTs per GiB produced.
    pub puts_per_gib: Ratio,
    /// Object GETs per GiB produced, for consumers (tail reads).
    pub gets_per_gib: Ratio,
    /// Bytes the compactor rewrites per byte produced.
    pub compaction_rewrite: Ratio,
    /// vCPU cores an agent fleet needs per MiB/s produced (= CPU seconds per MiB).
    pub cpu_cores_per_mibps: Ratio,
}

impl Ratios {
    /// Design defaults for a workload: one PUT per full WAL object; each zone other than the
    /// writer's fetches each object once into its zone cache (the writer's zone serves from the
    /// writer's cache, as the benchmarks measure); the compactor rewrites each byte once.
    pub fn defaults(w: &Workload, a: &Assumptions) -> Ratios {
        let objects_per_gib = MIB_PER_GIB / a.wal_object_mib;
        Ratios {
            puts_per_gib: Ratio::default_value(objects_per_gib),
            gets_per_gib: Ratio::default_value(
                objects_per_gib * f64::from(w.zones.saturating_sub(1)),
            ),
            compaction_rewrite: Ratio::default_value(1.0),
            // 100 MiB/s per core: a placeholder until a bench replaces it.
            cpu_cores_per_mibps: Ratio::default_value(0.01),
        }
    }
}

/// What a line of the bill is, for the chart's colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Compute,
    Storage,
    Requests,
    CrossZone,
    Metadata,
}

impl Category {
    pub const ALL: [Category; 5] = [
        Category::Compute,
        Category::Storage,
        Category::Requests,
        Category::CrossZone,
        Category::Metadata,
    ];
    pub fn label(self) -> &'static str {
        match self {
            Category::Compute => "compute",
            Category::Storage => "storage",
            Category::Requests => "S3 requests",
            Category::CrossZone => "cross-zone transfer",
            Category::Metadata => "metadata DB",
        }
    }
}

/// One item of a bill: its monthly cost and the formula that produced it.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub item: String,
    pub category: Category,
    pub formula: String,
    pub usd_month: f64,
}

/// A bill: its lines (the sum is the total).
#[derive(Debug, Clone, PartialEq)]
pub struct Bill {
    pub name: String,
    pub lines: Vec<Line>,
}

impl Bill {
    pub fn total(&self) -> f64 {
        self.lines.iter().map(|l| l.usd_month).sum()
    }
    pub fn by_category(&self, c: Category) -> f64 {
        self.lines
            .iter()
            .filter(|l| l.category == c)
            .map(|l| l.usd_month)
            .sum()
    }
}

/// The whole report: inputs, derived quantities, and three bills.
#[derive(Debug, Clone)]
pub struct Report {
    pub workload: Workload,
    pub assumptions: Assumptions,
    pub ratios: Ratios,
    pub prices: Prices,
    /// GiB produced per month, with its formula.
    pub gib_per_month: f64,
    pub gib_per_month_formula: String,
    pub floe: Bill,
    pub kafka_fff: Bill,
    pub kafka_no_fff: Bill,
    pub notes: Vec<String>,
}

/// Rounds `n` up to a multiple of `zones` (one instance per zone at least).
pub fn round_up_to_zones(n: f64, zones: u32) -> u32 {
    let z = zones.max(1);
    let n = n.ceil().max(1.0) as u32;
    n.div_ceil(z) * z
}

pub fn seconds_per_month(p: &Prices) -> f64 {
    p.hours_per_month * 3600.0
}

/// GiB produced per month: MiB/s / 1024 × seconds per month.
pub fn gib_per_month(ingest_mibps: f64, p: &Prices) -> f64 {
    ingest_mibps / MIB_PER_GIB * seconds_per_month(p)
}

/// $ per GiB that crosses a zone boundary (both sides billed).
pub fn cross_zone_usd_per_gib(p: &Prices) -> f64 {
    2.0 * p.transfer.inter_az_usd_per_gb_each_way
}

/// Classic Kafka's cross-zone $ per GiB produced, with clients spread evenly over `zones`,
/// leaders spread evenly, and each of the RF replicas in a different zone:
/// * producer → leader: (zones−1)/zones of the bytes cross a zone;
/// * leader → followers: min(RF−1, zones−1) copies cross a zone;
/// * consumers: without fetch-from-follower, (zones−1)/zones × fan-out cross; with it, none.
pub fn kafka_cross_zone_usd_per_gib(
    zones: u32,
    rf: u32,
    fanout: f64,
    fetch_from_follower: bool,
    p: &Prices,
) -> f64 {
    let z = f64::from(zones.max(1));
    let remote = (z - 1.0) / z;
    let replicas = f64::from(rf.saturating_sub(1).min(zones.saturating_sub(1)));
    let consumer = if fetch_from_follower {
        0.0
    } else {
        remote * fanout
    };
    (remote + replicas + consumer) * cross_zone_usd_per_gib(p)
}

/// Floe's WAL PUTs per second at full objects: MiB/s ÷ object MiB (1 GiB/s of 8 MiB → 128).
pub fn full_object_puts_per_s(ingest_mibps: f64, object_mib: f64) -> f64 {
    ingest_mibps / object_mib
}

fn validate(w: &Workload, a: &Assumptions, r: &Ratios, p: &Prices) -> Result<(), CostError> {
    let pos = [
        ("ingest MiB/s", w.ingest_mibps),
        ("retention days", w.retention_days),
        ("wal object MiB", a.wal_object_mib),
        ("compacted object MiB", a.compacted_object_mib),
        ("network utilisation", a.network_utilisation),
        ("cpu utilisation", a.cpu_utilisation),
        ("ebs max fill", a.ebs_max_fill),
    ];
    for (n, v) in pos {
        if !(v.is_finite() && v > 0.0) {
            return Err(CostError::Invalid(format!("{n} must be > 0, got {v}")));
        }
    }
    let nonneg = [
        ("fan-out", w.fanout),
        ("PUTs per GiB", r.puts_per_gib.value),
        ("GETs per GiB", r.gets_per_gib.value),
        ("compaction rewrite ratio", r.compaction_rewrite.value),
        ("CPU cores per MiB/s", r.cpu_cores_per_mibps.value),
    ];
    for (n, v) in nonneg {
        if !(v.is_finite() && v >= 0.0) {
            return Err(CostError::Invalid(format!("{n} must be >= 0, got {v}")));
        }
    }
    if w.zones == 0 || a.kafka_replication_factor == 0 {
        return Err(CostError::Invalid("zones and replication factor must be >= 1".into()));
    }
    if a.network_utilisation > 1.0 || a.cpu_utilisation > 1.0 || a.ebs_max_fill > 1.0 {
        return Err(CostError::Invalid("utilisations and fill must be <= 1".into()));
    }
    if w.region != p.region {
        return Err(CostError::Invalid(format!(
            "workload region {} but the prices file is for {} (pass --prices)",
            w.region, p.region
        )));
    }
    Ok(())
}

/// Short number formatting for formulas: integers without decimals, others with up to 4
/// significant decimals.
pub fn n(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        let i = v as i64;
        group(i)
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.3}")
    } else {
        let s = format!("{v:.6}");
        s.trim_end_matches('0').to_string()
    }
}

fn group(i: i64) -> String {
    let s = i.unsigned_abs().to_string();
    let mut out = String::new();
    for (k, c) in s.chars().enumerate() {
        if k > 0 && (s.len() - k) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if i < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Computes the three bills.
pub fn compute(
    w: &Workload,
    a: &Assumptions,
    r: &Ratios,
    p: &Prices,
) -> Result<Report, CostError> {
    validate(w, a, r, p)?;
    let secs = seconds_per_month(p);
    let hours = p.hours_per_month;
    let gib_s = w.ingest_mibps / MIB_PER_GIB;
    let gib_month = gib_per_month(w.ingest_mibps, p);
    let gib_month_formula = format!(
        "{} MiB/s / 1024 × {} h × 3600 s = {} GiB/month",
        n(w.ingest_mibps),
        n(hours),
        n(gib_month)
    );
    let xz = cross_zone_usd_per_gib(p);
    let zones = f64::from(w.zones);
    let stored_gib = gib_s * w.retention_days * 86_400.0;

    // ---- Floe ----
    let mut floe = Vec::new();
    let agent = &p.floe_agent;
    let cores = w.ingest_mibps * r.cpu_cores_per_mibps.value;
    let by_cpu = cores / (f64::from(agent.vcpus) * a.cpu_utilisation);
    let agent_net = agent.network_mibps() * a.network_utilisation;
    // An agent receives the produce stream, sends it to S3, and sends each consumer its copy.
    let agent_traffic = w.ingest_mibps * (2.0 + w.fanout);
    let by_net = agent_traffic / agent_net;
    let agents = round_up_to_zones(by_cpu.max(by_net), w.zones);
    floe.push(Line {
        item: format!("agents ({} × {})", agents, agent.instance),
        category: Category::Compute,
        formula: format!(
            "max(CPU {} MiB/s × {} cores/(MiB/s) [{}] / ({} vCPU × {}) = {}, network {} MiB/s × (2 + {} fan-out) / ({} MiB/s × {}) = {}) → round up to {} zones = {} × ${}/h × {} h",
            n(w.ingest_mibps), n(r.cpu_cores_per_mibps.value), r.cpu_cores_per_mibps.source.label(),
            agent.vcpus, n(a.cpu_utilisation), n(by_cpu),
            n(w.ingest_mibps), n(w.fanout), n(agent_net / a.network_utilisation), n(a.network_utilisation), n(by_net),
            w.zones, agents, n(agent.usd_per_hour), n(hours)
        ),
        usd_month: f64::from(agents) * agent.usd_per_hour * hours,
    });
    let put_s = gib_s * r.puts_per_gib.value;
    floe.push(Line {
        item: "S3 PUT (WAL objects)".into(),
        category: Category::Requests,
        formula: format!(
            "{} GiB/s × {} PUT/GiB [{}] = {} PUT/s × {} s / 1000 × ${}",
            n(gib_s), n(r.puts_per_gib.value), r.puts_per_gib.source.label(), n(put_s), n(secs), n(p.s3.put_usd_per_1000)
        ),
        usd_month: put_s * secs / 1000.0 * p.s3.put_usd_per_1000,
    });
    let get_s = gib_s * r.gets_per_gib.value;
    floe.push(Line {
        item: "S3 GET (consumer reads)".into(),
        category: Category::Requests,
        formula: format!(
            "{} GiB/s × {} GET/GiB [{}] = {} GET/s × {} s / 1000 × ${}",
            n(gib_s), n(r.gets_per_gib.value), r.gets_per_gib.source.label(), n(get_s), n(secs), n(p.s3.get_usd_per_1000)
        ),
        usd_month: get_s * secs / 1000.0 * p.s3.get_usd_per_1000,
    });
    let c = r.compaction_rewrite.value;
    let comp_get_s = gib_s * c * MIB_PER_GIB / a.wal_object_mib;
    let comp_put_s = gib_s * c * MIB_PER_GIB / a.compacted_object_mib;
    floe.push(Line {
        item: "S3 requests (compaction)".into(),
        category: Category::Requests,
        formula: format!(
            "{} GiB/s × {} rewrite [{}] × (1024/{} MiB GET {} /s × ${}/1000 + 1024/{} MiB PUT {} /s × ${}/1000) × {} s",
            n(gib_s), n(c), r.compaction_rewrite.source.label(),
            n(a.wal_object_mib), n(comp_get_s), n(p.s3.get_usd_per_1000),
            n(a.compacted_object_mib), n(comp_put_s), n(p.s3.put_usd_per_1000), n(secs)
        ),
        usd_month: (comp_get_s * p.s3.get_usd_per_1000 + comp_put_s * p.s3.put_usd_per_1000)
            * secs
            / 1000.0,
    });
    floe.push(Line {
        item: "S3 storage".into(),
        category: Category::Storage,
        formula: format!(
            "{} GiB/s × {} days × 86400 s = {} GiB × ${}/GB-month",
            n(gib_s), n(w.retention_days), n(stored_gib), n(p.s3.storage_usd_per_gb_month)
        ),
        usd_month: stored_gib * p.s3.storage_usd_per_gb_month,
    });
    let db = &p.metadata_db;
    floe.push(Line {
        item: format!("metadata DB ({})", db.instance),
        category: Category::Metadata,
        formula: format!(
            "${}/h × {} h + {} GB × ${}/GB-month",
            n(db.usd_per_hour), n(hours), n(db.storage_gb), n(db.storage_usd_per_gb_month)
        ),
        usd_month: db.usd_per_hour * hours + db.storage_gb * db.storage_usd_per_gb_month,
    });
    floe.push(Line {
        item: "cross-zone transfer".into(),
        category: Category::CrossZone,
        formula: "0 GiB × $0.02: clients use an agent in their own zone (client.id floe_az=<zone>), agents reach S3 in-region through a gateway endpoint (no transfer charge), consumers in other zones read S3 via their zone's agent; metadata commits (~1 KiB each) ignored".into(),
        usd_month: 0.0,
    });

    // ---- Kafka ----
    let rf = a.kafka_replication_factor;
    let rf_f = f64::from(rf);
    let broker = &p.kafka_broker;
    let broker_net = broker.network_mibps() * a.network_utilisation;
    // Per produced byte a cluster takes in RF copies (producer + RF−1 replication), sends out
    // RF−1 replication copies and fan-out consumer copies.
    let kafka_traffic = w.ingest_mibps * (rf_f + (rf_f - 1.0) + w.fanout);
    let by_net_k = kafka_traffic / broker_net;
    let brokers = round_up_to_zones(by_net_k, w.zones);
    let mut kafka = Vec::new();
    kafka.push(Line {
        item: format!("brokers ({} × {})", brokers, broker.instance),
        category: Category::Compute,
        formula: format!(
            "{} MiB/s × ({} RF in + {} replication out + {} fan-out) / ({} MiB/s × {}) = {} → round up to {} zones = {} × ${}/h × {} h",
            n(w.ingest_mibps), rf, rf - 1, n(w.fanout), n(broker.network_mibps()), n(a.network_utilisation), n(by_net_k),
            w.zones, brokers, n(broker.usd_per_hour), n(hours)
        ),
        usd_month: f64::from(brokers) * broker.usd_per_hour * hours,
    });
    let ebs_gib = stored_gib * rf_f / a.ebs_max_fill;
    kafka.push(Line {
        item: "EBS gp3 storage".into(),
        category: Category::Storage,
        formula: format!(
            "{} GiB × {} RF / {} max fill = {} GB × ${}/GB-month",
            n(stored_gib), rf, n(a.ebs_max_fill), n(ebs_gib), n(p.ebs_gp3.storage_usd_per_gb_month)
        ),
        usd_month: ebs_gib * p.ebs_gp3.storage_usd_per_gb_month,
    });
    // Each broker writes its share of RF copies; MiB/s → MB/s × 1.048576.
    let write_mbps = w.ingest_mibps * rf_f / f64::from(brokers) * 1.048_576;
    let extra_mbps = (write_mbps - p.ebs_gp3.included_mbps).max(0.0);
    kafka.push(Line {
        item: "EBS gp3 throughput".into(),
        category: Category::Storage,
        formula: format!(
            "{} brokers × max(0, {} MiB/s × {} / {} × 1.048576 = {} MB/s − {} included) × ${}/MB/s-month",
            brokers, n(w.ingest_mibps), rf, brokers, n(write_mbps), n(p.ebs_gp3.included_mbps), n(p.ebs_gp3.throughput_usd_per_mbps_month)
        ),
        usd_month: f64::from(brokers) * extra_mbps * p.ebs_gp3.throughput_usd_per_mbps_month,
    });
    let remote = (zones - 1.0) / zones;
    kafka.push(Line {
        item: "cross-zone: producer → leader".into(),
        category: Category::CrossZone,
        formula: format!(
            "{} GiB × ({}−1)/{} × ${}",
            n(gib_month), w.zones, w.zones, n(xz)
        ),
        usd_month: gib_month * remote * xz,
    });
    let replicas = f64::from(rf.saturating_sub(1).min(w.zones.saturating_sub(1)));
    kafka.push(Line {
        item: "cross-zone: replication".into(),
        category: Category::CrossZone,
        formula: format!(
            "{} GiB × min({}−1, {}−1) replicas × ${}",
            n(gib_month), rf, w.zones, n(xz)
        ),
        usd_month: gib_month * replicas * xz,
    });
    let mut kafka_fff = kafka.clone();
    kafka_fff.push(Line {
        item: "cross-zone: consumers (fetch-from-follower)".into(),
        category: Category::CrossZone,
        formula: format!(
            "{} GiB × {} fan-out × 0 (each consumer reads a replica in its own zone; needs RF {} ≥ zones {})",
            n(gib_month), n(w.fanout), rf, w.zones
        ),
        usd_month: 0.0,
    });
    let mut kafka_no_fff = kafka;
    kafka_no_fff.push(Line {
        item: "cross-zone: consumers (leader reads)".into(),
        category: Category::CrossZone,
        formula: format!(
            "{} GiB × {} fan-out × ({}−1)/{} × ${}",
            n(gib_month), n(w.fanout), w.zones, w.zones, n(xz)
        ),
        usd_month: gib_month * w.fanout * remote * xz,
    });

    let mut notes = vec![
        format!(
            "Prices: {} list prices for {}, dated {} (check them; override with --prices).",
            p.source, p.region, p.source_date
        ),
        format!(
            "Classic Kafka cross-zone per GiB produced: with fetch-from-follower ${:.4}, without ${:.4}.",
            kafka_cross_zone_usd_per_gib(w.zones, rf, w.fanout, true, p),
            kafka_cross_zone_usd_per_gib(w.zones, rf, w.fanout, false, p)
        ),
    ];
    if r.puts_per_gib.source == Source::Measured {
        notes.push(format!(
            "Measured PUTs/GiB include objects sealed by the {} ms timer before they were full: at a higher rate the ratio falls toward {} (full {} MiB objects).",
            250, n(MIB_PER_GIB / a.wal_object_mib), n(a.wal_object_mib)
        ));
    }
    if r.gets_per_gib.source == Source::Measured {
        notes.push("Measured GETs/GiB come from the bench's topology (often one agent, whose own cache serves its consumers): a fleet in several zones fetches each object once per other zone.".into());
    }
    Ok(Report {
        workload: w.clone(),
        assumptions: a.clone(),
        ratios: r.clone(),
        prices: p.clone(),
        gib_per_month: gib_month,
        gib_per_month_formula: gib_month_formula,
        floe: Bill {
            name: "Floe".into(),
            lines: floe,
        },
        kafka_fff: Bill {
            name: format!("Kafka RF={rf}, fetch-from-follower"),
            lines: kafka_fff,
        },
        kafka_no_fff: Bill {
            name: format!("Kafka RF={rf}, leader reads"),
            lines: kafka_no_fff,
        },
        notes,
    })
}
