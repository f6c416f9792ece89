//! Opens arbitrary bytes as a journal segment next to a fresh data file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    tiers_storage::faults::open_untrusted_image(&[], input, false);
});
