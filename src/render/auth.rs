//! The auth files servers read their passwords from. They are never
//! generated: each target writes them at start from its secrets (the
//! native bring-up with the values, the start scripts and ECS tasks with
//! printf from the environment). Their format is decided here, once: a
//! target that writes the values calls these with them, one that writes
//! from the environment calls them with "%s" and gets a printf format.
//!
//! Secrets are letters, digits, '_', '.' and '-' only (the start scripts
//! and the native bring-up check), so neither format needs escaping.

/// PgBouncer's auth_file: one `"user" "password"` line per entry, in
/// plain text, which lets PgBouncer answer SCRAM for clients and perform
/// SCRAM against PostgreSQL with the same entry.
pub fn pgbouncer_userlist(entries: &[(&str, &str)]) -> String {
    entries
        .iter()
        .map(|(user, password)| format!("\"{user}\" \"{password}\"\n"))
        .collect()
}

/// The include a Redis data node reads: its own password and the one it
/// authenticates to its master with (one password serves both).
pub fn redis_auth(password: &str) -> String {
    format!("requirepass \"{password}\"\nmasterauth \"{password}\"\n")
}

/// The include a sentinel reads: its own password, the master's and the
/// other sentinels'.
pub fn sentinel_auth(master: &str, password: &str) -> String {
    format!(
        "requirepass \"{password}\"\nsentinel auth-pass {master} \"{password}\"\nsentinel sentinel-pass \"{password}\"\n"
    )
}

/// A file's text as a printf format: "%s" placeholders stay, line breaks
/// become `\n`.
pub fn printf_format(text: &str) -> String {
    text.replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_for_values_and_for_printf_are_the_same_text() {
        assert_eq!(
            pgbouncer_userlist(&[("app", "pw1"), ("pgbouncer_admin", "pw2")]),
            "\"app\" \"pw1\"\n\"pgbouncer_admin\" \"pw2\"\n"
        );
        assert_eq!(
            printf_format(&redis_auth("%s")),
            "requirepass \"%s\"\\nmasterauth \"%s\"\\n"
        );
        assert_eq!(
            sentinel_auth("sikka", "pw"),
            "requirepass \"pw\"\nsentinel auth-pass sikka \"pw\"\nsentinel sentinel-pass \"pw\"\n"
        );
    }
}
