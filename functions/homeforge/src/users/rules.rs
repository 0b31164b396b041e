//! The field rules of an account: username, email, password policy, accent color.

use crate::{optional_text, required_text};

/// Django's username rule: letters, digits and `@.+-_`, at most 150 characters.
pub fn valid_username(v: Option<&str>) -> std::result::Result<String, String> {
    let name = required_text(v, 150)?;
    match name
        .chars()
        .all(|c| c.is_alphanumeric() || "@.+-_".contains(c))
    {
        true => Ok(name),
        false => Err("Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.".into()),
    }
}

/// Optional, but well-formed when given.
pub fn valid_email(v: Option<&str>) -> std::result::Result<String, String> {
    let email = optional_text(v, 254)?;
    let ok = email.is_empty()
        || (email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        }) && !email.chars().any(char::is_whitespace));
    match ok {
        true => Ok(email),
        false => Err("Enter a valid email address.".into()),
    }
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

    #[test]
    fn usernames_and_emails() {
        assert_eq!(
            valid_username(Some(" john.doe+1 ")),
            Ok("john.doe+1".into())
        );
        assert!(valid_username(Some("john doe")).is_err());
        assert!(valid_username(Some("")).is_err());
        assert_eq!(valid_email(Some("")), Ok(String::new()));
        assert!(valid_email(Some("john@example.com")).is_ok());
        assert!(valid_email(Some("john@example")).is_err());
    }
}
