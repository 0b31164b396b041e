#[tokio::main]
async fn main() -> Result<(), civic_runtime::Error> {
    civic_runtime::run_schedule(&ozone::live::SWEEP).await
}
