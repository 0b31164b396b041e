//! Every function the local program links, by binary name.

use civic_core::Function;

pub const APPS: &[&[Function]] = &[
    streetlight::FUNCTIONS,
    ozone::FUNCTIONS,
    occupancy::FUNCTIONS,
];

pub fn all() -> impl Iterator<Item = &'static Function> {
    APPS.iter().flat_map(|fs| fs.iter())
}

pub fn find(binary: &str) -> Option<&'static Function> {
    all().find(|f| f.name == binary)
}
