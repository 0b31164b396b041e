//! Analytics: usage stats (with cumulative, moving average and comparison), filter options,
//! CSV exports, events analytics, and the admin flush. Stats read rollups, so their cost
//! follows the number of buckets asked for, never the number of events.

mod export;
mod flush;
mod options;
mod stats;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::State;

pub use self::export::ExportParams;
pub use self::flush::FlushReply;
pub use self::options::{OptionItem, OptionsParams, StatsOptions};
pub use self::stats::{
    AnalyticsParams, DailyUsage, EventsAnalytics, Period, Series, Stats, StatsParams, StatsQuery,
};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(stats::stats))
        .routes(routes!(options::stats_options))
        .routes(routes!(export::stats_export))
        .routes(routes!(stats::events_analytics))
        .routes(routes!(export::export))
        .routes(routes!(flush::flush))
}
