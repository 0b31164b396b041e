#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    occupancy::admin::run_scheduler().await
}
