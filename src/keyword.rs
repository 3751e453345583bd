//! Enums whose variants are words of the spec and of the generated files
//! (`transaction`, `allkeys-lru`, `critical`): each word is written once,
//! and serde, the JSON Schema and `as_str` all take it from there, so the
//! name a user writes and the name a template prints cannot drift apart.

/// `keyword! { #[derive(...)] pub enum Mode { A = "a", B = "b" } }`
/// declares the enum with `#[serde(rename = ...)]` on each variant (which
/// schemars follows) and `as_str()` returning the same word.
#[macro_export]
macro_rules! keyword {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $word:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $($(#[$vmeta])* #[serde(rename = $word)] $variant),+
        }

        impl $name {
            /// The word, as the spec and the generated files write it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }
        }
    };
}
