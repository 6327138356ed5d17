//! The group benchmark's profile compiled to wasm, run under Node by `npm run bench`
//! (`wasm-pack test --node --release -- --test wasm-bench -- --nocapture groups_full`): the same
//! code as the native `benches/groups.rs`, in the release profile the package ships with.
//! Each run prints one JSON line per suite and size. Not part of `npm test`: `groups_quick`
//! is what `npm run bench -- --quick` runs, `groups_full` the full run.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../benches/shared/group_profile.rs"]
mod group_profile;

use logos_chat::core::conversation::mls;
use openmls::prelude::Ciphersuite;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen_test::{console_log, wasm_bindgen_test};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance)]
    fn now() -> f64;
}

fn sizes(list: &[usize]) {
    for &n in list {
        console_log!("{}", group_profile::run(mls::CIPHERSUITE, "X-Wing", n, now));
        let x25519 = Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519;
        console_log!("{}", group_profile::run(x25519, "X25519", n, now));
    }
}

#[wasm_bindgen_test]
fn groups_quick() {
    sizes(&[10]);
}

#[wasm_bindgen_test]
fn groups_full() {
    sizes(&[10, 100, 1000]);
}
