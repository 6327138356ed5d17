//! `Client::receive` on a member with a direct chat and a group (the world of
//! `corpus/world.bin`), restored afresh every few hundred inputs so that state built
//! up by earlier inputs cannot hide what an input does to a clean member.
#![no_main]
use std::cell::RefCell;

use logos_chat::core::fuzz::World;

const SNAPSHOT: &[u8] = include_bytes!("../corpus/world.bin");
const RESTORE_EVERY: u32 = 256;

thread_local! {
    static WORLD: RefCell<Option<(World, u32)>> = const { RefCell::new(None) };
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    WORLD.with(|w| {
        let mut w = w.borrow_mut();
        if w.as_ref().is_none_or(|(_, n)| *n >= RESTORE_EVERY) {
            let world = World::restore(SNAPSHOT, Box::new(rand_core::OsRng)).expect("corpus/world.bin restores");
            *w = Some((world, 0));
        }
        if let Some((world, n)) = w.as_mut() {
            *n += 1;
            world.receive(data);
        }
    });
});
