#[tokio::main]
async fn main() -> Result<(), civic_runtime::Error> {
    civic_runtime::run_live_authorizer(&ecoflow::live::LIVE).await
}
