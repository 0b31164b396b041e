#[tokio::main]
async fn main() -> Result<(), civic_runtime::Error> {
    civic_runtime::run_iot(&ozone::EVENTS_IN).await
}
