//! Runs a check at every instruction-set level of netrun's CPU kernels that
//! this machine supports (an AVX-512 machine also checks AVX2 and the
//! baseline), one test at a time per binary: the level is process-wide.

use netrun::backend::{self, Isa};
use std::sync::Mutex;

static LEVEL: Mutex<()> = Mutex::new(());

/// Calls `check(isa)` with the kernels capped at each supported level,
/// highest first, and restores the highest level afterwards.
pub fn each_isa(mut check: impl FnMut(Isa)) {
    let _one_at_a_time = LEVEL.lock().unwrap_or_else(|e| e.into_inner());
    let levels = Isa::supported();
    assert_eq!(levels[0], Isa::detected());
    assert_eq!(levels.last(), Some(&Isa::Scalar));
    for isa in levels {
        backend::set_isa(isa).unwrap();
        assert_eq!(backend::isa(), isa);
        check(isa);
    }
    backend::set_isa(Isa::detected()).unwrap();
}
