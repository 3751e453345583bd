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
/// scaleplan knows, by minor version, each tag one its publisher announced
/// (edoburu/docker-pgbouncer: the tags carry a `v`; `1.23.1-p2` without it
/// is "manifest unknown"). docs/versions.md lists the source of each. Any
/// other version needs `pgbouncer.image` (rule PGB005), rather than a
/// guessed tag that may not exist.
pub const PGBOUNCER_IMAGES: &[(u32, &str)] = &[
    (22, "edoburu/pgbouncer:v1.22.0-p0"),
    (23, "edoburu/pgbouncer:v1.23.1-p3"),
    (24, "edoburu/pgbouncer:v1.24.0-p0"),
    (25, "edoburu/pgbouncer:v1.25.2-p0"),
];

pub fn pgbouncer_image(minor: u32) -> Option<&'static str> {
    PGBOUNCER_IMAGES
        .iter()
        .find(|(m, _)| *m == minor)
        .map(|(_, image)| *image)
}
