//! SAM local + LocalStack, as far as a machine without Docker can check it: env.json gives every
//! function of template.yaml each variable it declares, pointed at LocalStack; the compose file
//! declares LocalStack on the network that `sam local` joins; `civic-local provision` creates
//! what env.json names (on moto); and scripts/sam-local runs its steps in order.

mod env_json;
mod provision;

use std::path::{Path, PathBuf};

use serde_yaml::Value as Yaml;

pub const BIN: &str = env!("CARGO_BIN_EXE_civic-local");
/// What the function containers call: the compose service on the `civic-sam` network.
pub const ENDPOINT: &str = "http://localstack:4566";
/// `civic-local provision`'s defaults, which scripts/sam-local uses.
pub const BUCKET: &str = "civic-local";
pub const JWT_KEYS: &str = "/civic/jwt-keys";

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn yaml(file: &str) -> Yaml {
    serde_yaml::from_str(&std::fs::read_to_string(repo().join(file)).unwrap()).unwrap()
}

pub fn env_json() -> serde_json::Map<String, serde_json::Value> {
    let text = std::fs::read_to_string(repo().join("env.json")).unwrap();
    serde_json::from_str(&text).expect("env.json is a JSON object")
}
