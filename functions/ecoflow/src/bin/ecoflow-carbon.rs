#[tokio::main]
async fn main() -> Result<(), civic_runtime::Error> {
    civic_runtime::run_http(&ecoflow::CARBON).await
}
