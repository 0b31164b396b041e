//! What a metered run cost and where: the figures [`super::Metered::report`] returns.

use std::collections::BTreeMap;
use std::fmt;

/// Seconds in the 30-day month that cost figures assume.
pub const MONTH_SECONDS: f64 = 30.0 * 86_400.0;

/// What the requests of one kind cost.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KindStats {
    pub requests: u64,
    /// Write units, table and GSI together.
    pub wcu: u64,
    /// The part of `wcu` spent on GSI writes.
    pub gsi_wcu: u64,
    /// Read units (GSI queries cost half, so this is fractional).
    pub rcu: f64,
    pub transactions: u64,
    /// Transactions that touched an item another in-flight transaction touched: real DynamoDB
    /// would cancel one of them with `TransactionConflict`.
    pub conflicts: u64,
}

/// A partition key and its worst simulated second.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HotKey {
    /// A table `PK`, or `GSI1#<GSI1PK>` for a partition of the index.
    pub key: String,
    pub peak_writes: u64,
    pub peak_wcu: u64,
}

/// The figures of a run (see [`super::Metered`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub kinds: BTreeMap<&'static str, KindStats>,
    pub total_wcu: u64,
    pub total_rcu: f64,
    /// Simulated seconds the recorded calls span (whole seconds, first to last, inclusive).
    pub seconds: f64,
    /// The hottest partition keys by peak writes per second, hottest first.
    pub hot: Vec<HotKey>,
}

impl Report {
    /// The figures of `kind` (zeros when it never ran).
    pub fn kind(&self, kind: &str) -> KindStats {
        self.kinds.get(kind).cloned().unwrap_or_default()
    }

    /// Write units per request of `kind` (0 when it never ran).
    pub fn wcu_per(&self, kind: &str) -> f64 {
        let k = self.kind(kind);
        ratio(k.wcu as f64, k.requests)
    }

    /// Read units per request of `kind` (0 when it never ran).
    pub fn rcu_per(&self, kind: &str) -> f64 {
        let k = self.kind(kind);
        ratio(k.rcu, k.requests)
    }

    /// Conflicts per request of `kind`, as a fraction: the share of requests (events) that
    /// real DynamoDB would have to retry.
    pub fn conflict_rate(&self, kind: &str) -> f64 {
        let k = self.kind(kind);
        ratio(k.conflicts as f64, k.requests)
    }

    /// The hottest partition key, if anything was written.
    pub fn hottest(&self) -> Option<&HotKey> {
        self.hot.first()
    }

    /// Mean write units per simulated second over the run.
    pub fn wcu_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.total_wcu as f64 / self.seconds
        } else {
            0.0
        }
    }
}

fn ratio(part: f64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { part / whole as f64 }
}

/// On-demand cost of a 30-day month at a steady `wcu_per_second`, at `usd_per_million_wru`
/// US dollars per million write request units (reads and storage not included).
pub fn monthly_cost(wcu_per_second: f64, usd_per_million_wru: f64) -> f64 {
    wcu_per_second * MONTH_SECONDS / 1e6 * usd_per_million_wru
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} WCU and {:.1} RCU over {} simulated s ({:.1} WCU/s)\n",
            self.total_wcu,
            self.total_rcu,
            self.seconds,
            self.wcu_per_second()
        )?;
        writeln!(
            f,
            "| kind | requests | WCU/request | RCU/request | conflicts % |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|")?;
        for (kind, k) in &self.kinds {
            writeln!(
                f,
                "| {kind} | {} | {:.2} | {:.2} | {:.3} |",
                k.requests,
                self.wcu_per(kind),
                self.rcu_per(kind),
                100.0 * self.conflict_rate(kind)
            )?;
        }
        writeln!(f, "\n| key | peak writes/s | peak WCU/s |")?;
        writeln!(f, "|---|---:|---:|")?;
        for hot in &self.hot {
            writeln!(
                f,
                "| {} | {} | {} |",
                hot.key, hot.peak_writes, hot.peak_wcu
            )?;
        }
        Ok(())
    }
}
