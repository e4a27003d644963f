//! The market's and a worker's public figures.

use super::*;

/// `GET /v1/market`: what an operator or a worker owner looks at first.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MarketStats {
    pub open_tasks: u64,
    pub running_tasks: u64,
    pub verified_tasks: u64,
    pub failed_tasks: u64,
    /// Tasks waiting for human reviewers.
    #[serde(default)]
    pub review_tasks: u64,
    pub price_levels: Vec<PriceLevel>,
    pub workers_online: u64,
    /// The workers seen in the last minute (at most 100, most credible
    /// first) with their spot-check record and credibility.
    #[serde(default)]
    pub workers: Vec<WorkerSummary>,
    /// The prices of the latest verified client tasks, newest first.
    pub recent_clearing_prices: Vec<Stroops>,
    pub fee_bps: u32,
    pub asset: String,
    pub network: String,
    pub operator: AccountId,
    /// Probation: earnings of results whose worker had passed fewer than
    /// `trusted_after` checks when it sent them settle this long after.
    #[serde(default)]
    pub holdback_secs: u64,
    #[serde(default)]
    pub trusted_after: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkerSummary {
    pub account: AccountId,
    pub checks: crate::trust::CheckRecord,
    pub credibility: f64,
}

/// `GET /v1/workers/{account}`: a worker's public record and how it grew,
/// hour by hour (UTC). Only hours that have ended are listed, so the
/// record never tells which of the worker's recent tasks was a spot check.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WorkerRecord {
    pub account: AccountId,
    /// Whether the market has seen this worker at all.
    pub known: bool,
    /// Seen in the last minute.
    pub online: bool,
    /// Caught failing a spot check: no more work, unsettled earnings forfeit.
    pub caught: bool,
    pub checks: crate::trust::CheckRecord,
    pub credibility: f64,
    /// Results decided so far: in the agreeing group, outvoted.
    pub agreed: u64,
    pub disagreed: u64,
    /// Paid out to this worker in settlement records, in total.
    pub paid_total: Stroops,
    /// The last 7 days of ended hours in which the worker had a result
    /// decided, oldest first.
    pub hours: Vec<WorkerHour>,
}

/// One ended UTC hour of a worker's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkerHour {
    /// The start of the hour.
    pub hour: DateTime<Utc>,
    /// Results decided in this hour: agreeing, outvoted.
    pub agreed: u64,
    pub disagreed: u64,
    /// Spot checks passed up to the end of this hour, and the credibility
    /// they gave then.
    pub checks_passed: u64,
    pub credibility: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PriceLevel {
    pub price: Stroops,
    pub tasks: u64,
}
