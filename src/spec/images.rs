//! The container image of each component version a spec can name.

/// Container images per version. Pinned to a major (Postgres, Redis) or an
/// exact release (PgBouncer, which has no official image), so a rebuild
/// never jumps a version the settings were not rendered for.
pub fn postgres_image(version: u8) -> String {
    format!("postgres:{version}-bookworm")
}

pub fn redis_image(version: u8) -> String {
    format!("redis:{version}-bookworm")
}

/// PgBouncer has no official image; these are the pinned community images
/// scaleplan knows, by minor version. Any other version needs
/// `pgbouncer.image` (rule PGB005), rather than a guessed tag that may not
/// exist.
pub const PGBOUNCER_IMAGES: &[(u32, &str)] = &[(23, "edoburu/pgbouncer:1.23.1-p2")];

pub fn pgbouncer_image(minor: u32) -> Option<&'static str> {
    PGBOUNCER_IMAGES
        .iter()
        .find(|(m, _)| *m == minor)
        .map(|(_, image)| *image)
}
