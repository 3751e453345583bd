//! The container image of each component version a spec can name.

/// Container images per version. Pinned to a major (Postgres, Redis) or an
/// exact release (PgBouncer, which has no official image), so a rebuild
/// never jumps a version the settings were not rendered for.
pub fn postgres_image(version: u8) -> String {
    format!("postgres:{version}-bookworm")
}

pub fn redis_image(version: u8) -> String {
    // Redis 8's official images are built on Debian 13 only (docker-library
    // official-images, library/redis: `8-trixie`); 6 and 7 on Debian 12.
    if version >= 8 {
        format!("redis:{version}-trixie")
    } else {
        format!("redis:{version}-bookworm")
    }
}

/// The Debian release `targets.compose.images: debian` builds on, and its
/// base image (the official `debian` image; the engine tests make it with
/// mmdebstrap, which gives the same minimal root).
pub const DEBIAN_RELEASE: &str = "trixie";
pub const DEBIAN_BASE: &str = "debian:trixie-slim";

/// What Debian 13 ships, one version of each: the versions a spec must
/// name to build its images from Debian (CMP001).
pub const DEBIAN_POSTGRES: u8 = 17;
pub const DEBIAN_REDIS: u8 = 8;
pub const DEBIAN_PGBOUNCER: &str = "1.24";

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
