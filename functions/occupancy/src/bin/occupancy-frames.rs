#[tokio::main]
async fn main() -> Result<(), civic_runtime::Error> {
    civic_runtime::run_s3(&occupancy::frames::FRAMES).await
}
