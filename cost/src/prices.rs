//! The prices file: every price the bill uses, with its region and source date.

use serde::Deserialize;

use crate::CostError;

/// The embedded default: public us-east-1 list prices (see the file's header for the date and
/// the pages to check them against).
pub const DEFAULT_PRICES_TOML: &str = include_str!("../prices/aws-us-east-1-2025-01-15.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    pub region: String,
    pub source_date: String,
    pub source: String,
    pub hours_per_month: f64,
    pub s3: S3,
    pub transfer: Transfer,
    pub ebs_gp3: EbsGp3,
    pub floe_agent: Instance,
    pub kafka_broker: Instance,
    pub metadata_db: MetadataDb,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3 {
    pub put_usd_per_1000: f64,
    pub get_usd_per_1000: f64,
    pub storage_usd_per_gb_month: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    pub inter_az_usd_per_gb_each_way: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EbsGp3 {
    pub storage_usd_per_gb_month: f64,
    pub included_mbps: f64,
    pub throughput_usd_per_mbps_month: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    pub instance: String,
    pub usd_per_hour: f64,
    pub vcpus: u32,
    pub baseline_network_gbps: f64,
}

impl Instance {
    /// Baseline network bandwidth in MiB/s: Gbit/s × 10^9 / 8 / 2^20.
    pub fn network_mibps(&self) -> f64 {
        self.baseline_network_gbps * 1e9 / 8.0 / 1_048_576.0
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataDb {
    pub instance: String,
    pub usd_per_hour: f64,
    pub storage_gb: f64,
    pub storage_usd_per_gb_month: f64,
}

impl Prices {
    /// Parses and checks a prices file: every price must be finite and not negative.
    pub fn parse(text: &str) -> Result<Prices, CostError> {
        let p: Prices = toml::from_str(text)?;
        p.validate()?;
        Ok(p)
    }

    /// The embedded default prices.
    pub fn embedded() -> Prices {
        // The embedded file is part of the build and covered by a unit test.
        Prices::parse(DEFAULT_PRICES_TOML).unwrap_or_else(|e| panic!("embedded prices: {e}"))
    }

    fn validate(&self) -> Result<(), CostError> {
        let all = [
            ("hours_per_month", self.hours_per_month),
            ("s3.put_usd_per_1000", self.s3.put_usd_per_1000),
            ("s3.get_usd_per_1000", self.s3.get_usd_per_1000),
            (
                "s3.storage_usd_per_gb_month",
                self.s3.storage_usd_per_gb_month,
            ),
            (
                "transfer.inter_az_usd_per_gb_each_way",
                self.transfer.inter_az_usd_per_gb_each_way,
            ),
            (
                "ebs_gp3.storage_usd_per_gb_month",
                self.ebs_gp3.storage_usd_per_gb_month,
            ),
            ("ebs_gp3.included_mbps", self.ebs_gp3.included_mbps),
            (
                "ebs_gp3.throughput_usd_per_mbps_month",
                self.ebs_gp3.throughput_usd_per_mbps_month,
            ),
            ("floe_agent.usd_per_hour", self.floe_agent.usd_per_hour),
            (
                "floe_agent.baseline_network_gbps",
                self.floe_agent.baseline_network_gbps,
            ),
            ("kafka_broker.usd_per_hour", self.kafka_broker.usd_per_hour),
            (
                "kafka_broker.baseline_network_gbps",
                self.kafka_broker.baseline_network_gbps,
            ),
            ("metadata_db.usd_per_hour", self.metadata_db.usd_per_hour),
            ("metadata_db.storage_gb", self.metadata_db.storage_gb),
            (
                "metadata_db.storage_usd_per_gb_month",
                self.metadata_db.storage_usd_per_gb_month,
            ),
        ];
        for (name, v) in all {
            if !v.is_finite() || v < 0.0 {
                return Err(CostError::Invalid(format!("{name} = {v} must be >= 0")));
            }
        }
        for (name, i) in [
            ("floe_agent", &self.floe_agent),
            ("kafka_broker", &self.kafka_broker),
        ] {
            if i.vcpus == 0 || i.baseline_network_gbps <= 0.0 {
                return Err(CostError::Invalid(format!(
                    "{name}: vcpus and baseline_network_gbps must be > 0"
                )));
            }
        }
        if self.hours_per_month <= 0.0 {
            return Err(CostError::Invalid("hours_per_month must be > 0".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_prices_parse_and_carry_their_date() {
        let p = Prices::embedded();
        assert_eq!(p.region, "us-east-1");
        assert_eq!(p.source_date, "2025-01-15");
        assert_eq!(p.s3.put_usd_per_1000, 0.005);
        assert_eq!(p.transfer.inter_az_usd_per_gb_each_way, 0.01);
    }

    #[test]
    fn network_gbps_to_mibps() {
        // 3.125 Gbit/s = 390,625,000 B/s = 372.529... MiB/s.
        let p = Prices::embedded();
        assert!((p.floe_agent.network_mibps() - 372.529_029_846_191_4).abs() < 1e-9);
    }

    #[test]
    fn negative_or_unknown_fields_are_refused() {
        let bad = DEFAULT_PRICES_TOML.replace("put_usd_per_1000 = 0.005", "put_usd_per_1000 = -1");
        assert!(matches!(Prices::parse(&bad), Err(CostError::Invalid(_))));
        let unknown = format!("{DEFAULT_PRICES_TOML}\n[extra]\nx = 1\n");
        assert!(matches!(Prices::parse(&unknown), Err(CostError::Prices(_))));
    }
}
