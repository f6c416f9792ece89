//! Opens arbitrary bytes as a data file. The first input byte chooses whether
//! page checksums are recomputed first (to reach the structural checks).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    if let Some((flags, data)) = input.split_first() {
        tiers_storage::faults::open_untrusted_image(data, &[], flags & 1 == 1);
    }
});
