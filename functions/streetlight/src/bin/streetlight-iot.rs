#[tokio::main]
async fn main() -> Result<(), civic_runtime::Error> {
    civic_runtime::run_iot(&streetlight::STATUS_IN).await
}
