//! The field rules of an account (username, email, role, password policy, accent color), each
//! read from a request [`Body`] with its errors recorded there.

use civic_core::fields::{Body, REQUIRED};

use crate::Role;

/// Django's username rule: letters, digits and `@.+-_`, at most 150 characters.
pub fn username(b: &mut Body) -> Option<String> {
    let name = b.strict_string("username", true, false, 150)?;
    match name
        .chars()
        .all(|c| c.is_alphanumeric() || "@.+-_".contains(c))
    {
        true => Some(name),
        false => {
            b.error("username", "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.");
            None
        }
    }
}

/// Optional, but well-formed when given.
pub fn email(b: &mut Body) -> Option<String> {
    let email = b.strict_string("email", false, true, 254)?;
    let ok = email.is_empty()
        || (email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        }) && !email.chars().any(char::is_whitespace));
    match ok {
        true => Some(email),
        false => {
            b.error("email", "Enter a valid email address.");
            None
        }
    }
}

/// A role by name, or DRF's choice error.
pub fn role(b: &mut Body) -> Option<Role> {
    let value = b.typed::<String>("role", false)?;
    Role::parse(&value).map_err(|msg| b.error("role", msg)).ok()
}

/// A new password, as sent, checked against [`password_errors`]. An empty one counts as
/// absent (a form that always sends the field), which is [`REQUIRED`] when `required`.
pub fn new_password(b: &mut Body, required: bool) -> Option<String> {
    let password = b
        .typed::<String>("password", false)
        .filter(|p| !p.is_empty());
    match &password {
        None if required => b.error("password", REQUIRED),
        None => {}
        Some(p) => password_errors(p)
            .into_iter()
            .for_each(|msg| b.error("password", msg)),
    }
    password
}

/// `accent_color`, as [`valid_accent`] checks it.
pub fn accent(b: &mut Body) -> Option<String> {
    let value = b.typed::<String>("accent_color", false)?;
    valid_accent(&value)
        .map_err(|msg| b.error("accent_color", msg))
        .ok()
}

/// The seed's policy: at least 4 characters, at least one uppercase letter; and, beyond the
/// seed, not one of the most common passwords. Every failed rule is reported.
pub fn password_errors(password: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if civic_auth::is_common_password(password) {
        errors.push("This password is too common.".to_owned());
    }
    if password.chars().count() < 4 {
        errors.push("Ensure this field has at least 4 characters.".to_owned());
    }
    if !password.chars().any(char::is_uppercase) {
        errors.push("Password must contain at least one uppercase letter.".to_owned());
    }
    errors
}

/// `#RRGGBB`.
pub fn valid_accent(v: &str) -> std::result::Result<String, String> {
    let v = v.trim();
    match v.len() == 7 && v.starts_with('#') && v[1..].chars().all(|c| c.is_ascii_hexdigit()) {
        true => Ok(v.to_owned()),
        false => Err("Enter a valid hex color in the form #RRGGBB, e.g. #3B82F6.".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_policy_reports_every_rule() {
        assert!(password_errors("Abcd").is_empty());
        assert_eq!(password_errors("abc").len(), 2);
        assert_eq!(
            password_errors("abcdef"),
            ["Password must contain at least one uppercase letter."]
        );
        assert_eq!(password_errors("ABC").len(), 1);
    }

    #[test]
    fn accent_colors_are_six_hex_digits() {
        assert_eq!(valid_accent("#ff5733"), Ok("#ff5733".into()));
        for bad in ["ff5733", "#ff573", "#ff57333", "#gg5733", "", "#FF573Z"] {
            assert!(valid_accent(bad).is_err(), "{bad}");
        }
    }

    fn body(field: &str, value: &str) -> Body {
        Body::of(serde_json::json!({ field: value }))
    }

    #[test]
    fn usernames_and_emails() {
        let mut b = body("username", " john.doe+1 ");
        assert_eq!(username(&mut b).as_deref(), Some("john.doe+1"));
        assert!(b.finish().is_ok());
        for bad in ["john doe", ""] {
            let mut b = body("username", bad);
            assert_eq!(username(&mut b), None);
            assert!(b.finish().is_err(), "{bad}");
        }
        let mut b = body("email", "");
        assert_eq!(email(&mut b).as_deref(), Some(""));
        assert!(b.finish().is_ok());
        let mut b = body("email", "john@example.com");
        assert!(email(&mut b).is_some());
        assert!(b.finish().is_ok());
        let mut b = body("email", "john@example");
        assert_eq!(email(&mut b), None);
        assert!(b.finish().is_err());
    }
}
