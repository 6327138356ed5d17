//! The core and its bindings compiled to wasm32, in headless Chromium
//! (`wasm-pack test --headless --chrome`).
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

#[path = "cases.rs"]
mod cases;
