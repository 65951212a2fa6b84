//! The persistent map against `BTreeMap` copies: see `tests/model/hamt.rs`.

#![no_main]

#[path = "../../tests/model/hamt.rs"]
mod model;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    model::run_hamt(&model::decode(data));
});
