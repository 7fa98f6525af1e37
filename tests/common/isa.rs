//! Runs a check at every instruction-set level of netrun's CPU kernels that
//! this machine supports (an AVX-512 machine also checks AVX2 and the
//! baseline), one test at a time per binary: the level is process-wide.

use netrun::backend::{self, Isa};
use std::sync::{Mutex, MutexGuard};

static LEVEL: Mutex<()> = Mutex::new(());

/// Holds the lock `each_isa` takes, for a test that changes another
/// process-wide setting (the Winograd policy, the thread count) and must not
/// run beside one that checks at every level.
#[allow(dead_code)]
pub fn exclusive() -> MutexGuard<'static, ()> {
    LEVEL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Calls `check(isa)` with the kernels capped at each supported level,
/// highest first, and restores the highest level afterwards.
pub fn each_isa(mut check: impl FnMut(Isa)) {
    let _one_at_a_time = exclusive();
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
