//! Settings from the environment, read the one way every crate reads them: each crate has one
//! `Config` struct, built once at start by an [`Env`] reader, which collects every bad value and
//! fails naming the variables, so a typo stops the start instead of panicking mid-request or
//! silently falling back to a default. The README's configuration table lists them all.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

/// The variables whose values do not parse, each with what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}", self.0.join("; "))
    }
}

impl std::error::Error for ConfigError {}

impl From<ConfigError> for String {
    fn from(e: ConfigError) -> Self {
        e.to_string()
    }
}

/// Reads variables, recording each one that is set but does not parse.
#[derive(Default)]
pub struct Env {
    errors: Vec<String>,
}

impl Env {
    pub fn new() -> Self {
        Self::default()
    }

    /// The raw value, when set and not blank.
    pub fn text(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }

    /// The parsed value, or `default` when unset; a value that does not parse is recorded.
    pub fn get<T: FromStr>(&mut self, name: &str, default: T) -> T {
        self.opt(name).unwrap_or(default)
    }

    /// The parsed value when set; a value that does not parse is recorded.
    pub fn opt<T: FromStr>(&mut self, name: &str) -> Option<T> {
        let raw = self.text(name)?;
        match raw.trim().parse() {
            Ok(v) => Some(v),
            Err(_) => {
                self.errors.push(format!(
                    "{name}={raw:?} is not a valid {}",
                    short_type::<T>()
                ));
                None
            }
        }
    }

    /// A comma-separated list, each entry trimmed, blanks dropped.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.text(name)
            .unwrap_or_default()
            .split(',')
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// Records a value that parsed but is not acceptable (`what` says why).
    pub fn reject(&mut self, name: &str, what: impl fmt::Display) {
        self.errors.push(format!("{name}: {what}"));
    }

    /// `value` when every variable read was valid.
    pub fn finish<T>(self, value: T) -> Result<T, ConfigError> {
        match self.errors.is_empty() {
            true => Ok(value),
            false => Err(ConfigError(self.errors)),
        }
    }
}

/// A crate's settings, built from the environment by one [`Env`].
pub trait FromEnv: Sized + Send + Sync + 'static {
    fn from_env(env: &mut Env) -> Self;

    /// Read from the environment now, every bad variable named.
    fn read() -> Result<Self, ConfigError> {
        let mut env = Env::new();
        let value = Self::from_env(&mut env);
        env.finish(value)
    }
}

/// The settings in `cell`, read the first time and kept for the process: a crate's
/// `Config::get` is one call to this, and the start-up check ([`crate::App::config`]) is its
/// first reader, so a bad value stops the start.
pub fn once<T: FromEnv>(
    cell: &'static OnceLock<Result<T, ConfigError>>,
) -> Result<&'static T, ConfigError> {
    cell.get_or_init(T::read).as_ref().map_err(Clone::clone)
}

/// Whether this process is a Lambda function (closed defaults) rather than civic-local.
pub fn in_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
}

/// `u64`, `bool`, `Tz`: the type's last path segment, for the error message.
fn short_type<T>() -> &'static str {
    let name = std::any::type_name::<T>();
    let name = name.split('<').next().unwrap_or(name);
    match name.rsplit("::").next().unwrap_or(name) {
        "i64" | "i32" | "u64" | "u32" | "usize" => "integer",
        "bool" => "boolean (true or false)",
        "f64" | "f32" => "number",
        "Tz" => "IANA time zone",
        "RatePlan" => "rate plan (off or plan)",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_variable_is_named_and_unset_ones_take_their_default() {
        // Names no other test or process sets.
        unsafe {
            std::env::set_var("CIVIC_TEST_CFG_SECS", "ten");
            std::env::set_var("CIVIC_TEST_CFG_FLAG", "yes");
            std::env::set_var("CIVIC_TEST_CFG_OK", " 7 ");
            std::env::set_var("CIVIC_TEST_CFG_LIST", "a, ,b");
        }
        let mut env = Env::new();
        assert_eq!(env.get("CIVIC_TEST_CFG_SECS", 5u64), 5);
        assert!(!env.get("CIVIC_TEST_CFG_FLAG", false));
        assert_eq!(env.get("CIVIC_TEST_CFG_OK", 0i64), 7);
        assert_eq!(env.get("CIVIC_TEST_CFG_UNSET", 9i64), 9);
        assert_eq!(env.list("CIVIC_TEST_CFG_LIST"), ["a", "b"]);
        let err = env.finish(()).unwrap_err().to_string();
        assert!(
            err.contains("CIVIC_TEST_CFG_SECS=\"ten\" is not a valid integer"),
            "{err}"
        );
        assert!(err.contains("CIVIC_TEST_CFG_FLAG=\"yes\""), "{err}");
        assert!(!err.contains("CIVIC_TEST_CFG_OK"), "{err}");
    }
}
