//! logos-chat: the Logos Chat SDK for the web.
//!
//! - [`core`]: the sans-IO protocol core (accounts, directory, conversations,
//!   wire codecs). It compiles and tests natively.
//! - `wasm` (wasm32 only): the wasm-bindgen layer the npm package drives.
#![forbid(unsafe_code)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::arithmetic_side_effects,
        clippy::cast_possible_truncation,
        clippy::indexing_slicing
    )
)]

pub mod core;

#[cfg(target_arch = "wasm32")]
pub mod wasm;
