//! The README's endpoint tables against the matrix.

use civic_testkit::authz::Row;

use crate::ecoflow::ECOFLOW;
use crate::homeforge::HOMEFORGE;
use crate::occupancy::OCCUPANCY;
use crate::ozone::OZONE;
use crate::streetlight::STREETLIGHT;
use crate::{H, O};

/// The operations of an app's README table: `(METHOD, path as in the document, who)`. Rows
/// list several methods (`GET, PUT`), several paths, trailing slashes and query strings; a
/// "who" of `a / b` is `a` for GET and `b` for the other methods.
fn readme_rows(readme: &str, section: &str, prefix: &str) -> Vec<(String, String, String)> {
    let start = readme
        .find(&format!("\n### {section}\n"))
        .unwrap_or_else(|| panic!("README has no {section} section"));
    let body = &readme[start + section.len() + 6..];
    let body = &body[..body.find("\n### ").unwrap_or(body.len())];
    let mut rows = Vec::new();
    for line in body.lines().filter(|l| l.starts_with("| ")) {
        let cells: Vec<&str> = line
            .split(" | ")
            .map(|c| c.trim_matches(['|', ' ']))
            .collect();
        let methods: Vec<&str> = cells[0].split(", ").collect();
        let known = ["GET", "POST", "PUT", "PATCH", "DELETE"];
        if !methods.iter().all(|m| known.contains(m)) {
            continue; // the header row, or a schedule
        }
        let who: Vec<&str> = cells[2].split(" / ").collect();
        for path in cells[1].split('`').skip(1).step_by(2) {
            let path = path.split('?').next().unwrap().trim_end_matches('/');
            for m in &methods {
                let w = match (who.len(), *m) {
                    (2, "GET") => who[0],
                    (2, _) => who[1],
                    _ => cells[2],
                };
                rows.push((m.to_string(), format!("{prefix}{path}"), w.to_owned()));
            }
        }
    }
    rows
}

/// Which of the first callers (anonymous, then the app's roles) a README "who" admits.
fn admits(app: &str, who: &str) -> Vec<bool> {
    let v = |s: &str| s.chars().map(|c| c == '1').collect::<Vec<_>>();
    match (app, who) {
        (_, "anyone") => v("11111"),
        ("streetlight", "any role") => v("0111"),
        ("streetlight", "operator, admin") => v("0011"),
        ("streetlight", "admin") => v("0001"),
        // A device's handshake and legacy report carry no user credential.
        ("ozone", "device" | "device (MAC)") => v("111"),
        ("ozone", "device token") => v("000"),
        ("ozone", "session") => v("011"),
        ("ozone", "staff") => v("001"),
        ("homeforge", "any role" | "owner of the device, staff") => v("01111"),
        ("homeforge", "user, staff" | "owner of the device (not a viewer), staff") => v("00111"),
        ("homeforge", "staff") => v("00011"),
        ("ecoflow", "user") => v("011"),
        ("ecoflow", "admin") => v("001"),
        _ => panic!("{app}: README's who {who:?} is not a known phrase; add it to `admits`"),
    }
}

/// Compares an app's README table with its matrix: the same operations and, where the README
/// has a "who" column (`roles`: how many roles follow the anonymous column), the same callers
/// admitted. A caller refused with 404 (the object is
/// hidden from it) is admitted: the README's "owner of the device" is ownership, not role.
fn compare_readme<const N: usize>(
    readme: &str,
    app: &str,
    section: &str,
    prefix: &str,
    roles: Option<usize>,
    rows: &[Row<N>],
) -> Vec<String> {
    let documented = readme_rows(readme, section, prefix);
    let mut wrong = Vec::new();
    for (method, path, outcomes) in rows {
        let Some((_, _, who)) = documented.iter().find(|(m, p, _)| m == method && p == path) else {
            wrong.push(format!(
                "{app}: {method} {path} is missing from the README's table"
            ));
            continue;
        };
        let Some(roles) = roles else { continue };
        let reach: Vec<bool> = outcomes[..=roles]
            .iter()
            .map(|o| *o == O || *o == H)
            .collect();
        let said = &admits(app, who)[..=roles];
        if reach != said {
            wrong.push(format!(
                "{app}: {method} {path}: the README says {who:?}, the matrix admits {reach:?}"
            ));
        }
    }
    for (method, path, _) in &documented {
        if !rows.iter().any(|(m, p, _)| m == method && p == path) {
            wrong.push(format!(
                "{app}: the README lists {method} {path}, which has no row"
            ));
        }
    }
    wrong
}

#[test]
fn readme_role_tables_agree_with_the_matrix() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let mut wrong = Vec::new();
    wrong.extend(compare_readme(
        &readme,
        "streetlight",
        "Streetlight",
        "",
        Some(3),
        STREETLIGHT,
    ));
    wrong.extend(compare_readme(
        &readme,
        "ozone",
        "Ozone",
        "",
        Some(2),
        OZONE,
    ));
    wrong.extend(compare_readme(
        &readme,
        "homeforge",
        "HomeForge",
        "",
        Some(4),
        HOMEFORGE,
    ));
    wrong.extend(compare_readme(
        &readme,
        "ecoflow",
        "EcoFlow",
        "",
        Some(2),
        ECOFLOW,
    ));
    // Occupancy's third column names the function, not who: with tokens required every route
    // needs one, which its matrix states row by row.
    wrong.extend(compare_readme(
        &readme,
        "occupancy",
        "Occupancy",
        "/api/occupancy",
        None,
        OCCUPANCY,
    ));
    assert!(
        wrong.is_empty(),
        "README and matrix disagree:\n{}",
        wrong.join("\n")
    );
}
