//! Context variables against a simple reference model: see `tests/model/context.rs`.

#![no_main]

#[path = "../../tests/model/context.rs"]
mod model;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    model::run_context(&model::decode(data));
});
