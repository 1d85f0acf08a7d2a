//! GetStatistics at the gRPC edge: the request checked into a query, the answer into proto.
use tonic::Status;

use super::pb;
use crate::core::stats::By;
use crate::service::statistics::StatsQuery;

pub(super) fn query(r: pb::GetStatisticsRequest) -> Result<StatsQuery, Status> {
    let by = match r.by.as_str() {
        "" => None,
        s => Some(By::parse(s).ok_or_else(|| {
            Status::invalid_argument(format!("by {s:?}: use day, week or month"))
        })?),
    };
    Ok(StatsQuery {
        platform: (!r.platform.is_empty()).then_some(r.platform),
        from: r.from.map(|t| t.seconds),
        to: r.to.map(|t| t.seconds),
        by,
    })
}
