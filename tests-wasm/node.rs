//! The core and its bindings compiled to wasm32, under Node (`wasm-pack test --node`).
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "cases.rs"]
mod cases;
