//! Group benchmarks (`npm run bench` runs it): the MLS cost of each group operation under
//! logos-chat's profile, at N = 10, 100, 1,000 (and 10,000 with the X25519 suite), for
//! X-Wing (0x004D, the default) and X25519 (0x0003, allowed for very large groups).
//! One-shot timings (criterion would repeat a 10,000-member create for minutes); prints
//! one JSON object per line for `bench/run.mjs`. `--quick` stops at N = 100.
//!
//! Measured: create (the founder adds N − 1 in one commit, as the engine does), add-50
//! (a steward's add-only commit of 50 more, without an UpdatePath, as de-MLS stewards make
//! them, with the Welcomes cut per joiner and the tree exported once), join (one of those
//! 50 processes its own Welcome with the ratchet tree that travels apart), remove (one
//! member, a commit with an UpdatePath), and
//! a 1 KiB application message (encrypt, decrypt), with the byte sizes of the per-joiner
//! Welcome, the tree (published once per commit), the commits and the message against
//! the 150 KiB limit.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

#[path = "shared/group_profile.rs"]
mod group_profile;

use std::sync::OnceLock;
use std::time::Instant;

use logos_chat::core::conversation::mls;
use openmls::prelude::Ciphersuite;

fn now() -> f64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64() * 1000.0
}

fn run(suite: Ciphersuite, label: &str, n: usize) {
    println!("{}", group_profile::run(suite, label, n, now));
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes: &[usize] = if quick { &[10, 100] } else { &[10, 100, 1000] };
    for &n in sizes {
        run(mls::CIPHERSUITE, "X-Wing", n);
        run(Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519, "X25519", n);
    }
    if !quick {
        run(mls::CIPHERSUITE, "X-Wing", 10_000);
        run(Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519, "X25519", 10_000);
    }
}
