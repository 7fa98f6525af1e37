//! Compiles a `.cu` file with the host's g++ and `emulation.h` into a shared
//! library (behind `src/backend/cuda/prelude.cuh`, as NVRTC gets it), loads it
//! with libloading and launches its kernels on the CPU.
//!
//! Without g++ the tests skip with a message, unless NETRUN_REQUIRE_GXX is set
//! (`.ci/run` sets it), when a missing compiler fails them.

use libloading::Library;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

/// The order threads of a block run in between barriers; a kernel must give
/// the same result in both (within its tolerance where float atomics reorder sums).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Forward,
    Reverse,
}
pub const ORDERS: [Order; 2] = [Order::Forward, Order::Reverse];

/// One `.cu` file compiled for the host.
pub struct Module {
    lib: Library,
    path: &'static str,
}

type LaunchFn = unsafe extern "C" fn(
    *const u32,
    usize,
    c_int,
    extern "C" fn(*mut c_void),
    *mut c_void,
    *mut c_char,
    usize,
) -> c_int;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn compiler() -> String {
    std::env::var("CXX").unwrap_or_else(|_| "g++".to_string())
}

/// Whether the tests can run here; prints why not (once per test) and panics
/// when NETRUN_REQUIRE_GXX demands a compiler.
pub fn available() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    let found = *FOUND.get_or_init(|| {
        Command::new(compiler())
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !found {
        assert!(
            std::env::var_os("NETRUN_REQUIRE_GXX").is_none(),
            "NETRUN_REQUIRE_GXX is set but `{}` does not run (install g++, or set CXX)",
            compiler()
        );
        println!(
            "skipped: no C++ compiler (`{}`) to emulate the CUDA kernels",
            compiler()
        );
    }
    found
}

/// `extern __shared__ T name[];` → `T* name = emu::dynamic_shared<T>();` (see emulation.h).
pub fn rewrite_dynamic_shared(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    for line in code.lines() {
        let t = line.trim_start();
        match t.strip_prefix("extern __shared__ ") {
            Some(rest) => {
                let decl = rest.split(';').next().unwrap_or("");
                let comment = rest.split_once(';').map_or("", |(_, c)| c);
                let (ty, name) = decl
                    .trim_end_matches("[]")
                    .rsplit_once(' ')
                    .unwrap_or_else(|| panic!("cannot read shared declaration `{line}`"));
                let indent = &line[..line.len() - t.len()];
                out.push_str(&format!(
                    "{indent}{ty}* {name} = emu::dynamic_shared<{ty}>();{comment}"
                ));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

fn fnv(bytes: &[u8], mut h: u64) -> u64 {
    for &b in bytes {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    h
}

fn compile(path: &str) -> Result<PathBuf, String> {
    let header = root().join("tests/cuda_emulation/emulation.h");
    let code = std::fs::read_to_string(root().join(path)).map_err(|e| format!("{path}: {e}"))?;
    // NVRTC gets the prelude in front of every source (src/backend/cuda/kernels.rs).
    let prelude = std::fs::read_to_string(root().join("src/backend/cuda/prelude.cuh"))
        .map_err(|e| e.to_string())?;
    let header_text = std::fs::read_to_string(&header).map_err(|e| e.to_string())? + &prelude;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cuda_emulation");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let key = fnv(
        header_text.as_bytes(),
        fnv(code.as_bytes(), 0xcbf2_9ce4_8422_2325),
    );
    let stem = Path::new(path).file_stem().unwrap().to_string_lossy();
    let lib = dir.join(format!("{stem}-{key:016x}.so"));
    if lib.exists() {
        return Ok(lib);
    }
    let src = dir.join(format!("{stem}-{key:016x}.cpp"));
    let text = format!(
        "#line 1 \"src/backend/cuda/prelude.cuh\"\n{prelude}#line 1 \"{path}\"\n{}",
        rewrite_dynamic_shared(&code)
    );
    std::fs::write(&src, text).map_err(|e| e.to_string())?;
    let tmp = dir.join(format!("{stem}-{key:016x}.{}.so", std::process::id()));
    let out = Command::new(compiler())
        .args(["-std=c++17", "-O2", "-ffp-contract=off", "-fPIC", "-shared"])
        .args(["-Wall", "-Wno-unused-function", "-include"])
        .arg(&header)
        .arg("-x")
        .arg("c++")
        .arg(&src)
        .arg("-o")
        .arg(&tmp)
        .output()
        .map_err(|e| format!("{}: {e}", compiler()))?;
    if !out.status.success() {
        return Err(format!(
            "{path} does not compile for the host emulation:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::fs::rename(&tmp, &lib).map_err(|e| e.to_string())?;
    Ok(lib)
}

impl Module {
    /// The module of `path` (from the crate root), compiled once per test run.
    pub fn get(path: &'static str) -> Arc<Module> {
        static CACHE: OnceLock<Mutex<HashMap<&'static str, Arc<Module>>>> = OnceLock::new();
        let mut cache = CACHE
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(m) = cache.get(path) {
            return Arc::clone(m);
        }
        let lib = compile(path).unwrap_or_else(|e| panic!("{e}"));
        // SAFETY: the library is ours, built just now; its initialisers only
        // set up the header's globals.
        let lib = unsafe { Library::new(&lib) }.unwrap_or_else(|e| panic!("{path}: {e}"));
        let m = Arc::new(Module { lib, path });
        cache.insert(path, Arc::clone(&m));
        m
    }

    /// The kernel `name`, as a function pointer of type `F` (the test states the
    /// kernel's C signature; see the `.cu` file).
    pub fn kernel<F: Copy>(&self, name: &str) -> F {
        // SAFETY: F is the kernel's signature as written in its source.
        unsafe {
            *self
                .lib
                .get::<F>(name.as_bytes())
                .unwrap_or_else(|e| panic!("{}: no kernel `{name}`: {e}", self.path))
        }
    }

    /// The address of a global of the library (one of the header's built-ins).
    pub fn symbol<T>(&self, name: &str) -> *const T {
        // SAFETY: a data symbol is read through the pointer only while it lives.
        unsafe {
            *self
                .lib
                .get::<*const T>(name.as_bytes())
                .unwrap_or_else(|e| panic!("{}: no symbol `{name}`: {e}", self.path))
        }
    }

    /// Runs `body` (which calls one kernel) as every thread of a `grid` × `block`
    /// launch (x only) with `shared` bytes of dynamic shared memory.
    pub fn launch<F: Fn()>(&self, grid: u32, block: u32, shared: usize, order: Order, body: F) {
        self.launch3([grid, 1, 1], [block, 1, 1], shared, order, body)
    }

    pub fn launch3<F: Fn()>(
        &self,
        grid: [u32; 3],
        block: [u32; 3],
        shared: usize,
        order: Order,
        body: F,
    ) {
        extern "C" fn trampoline<F: Fn()>(arg: *mut c_void) {
            // SAFETY: `arg` is the `&F` passed below, alive for the launch.
            unsafe { (*(arg as *const F))() }
        }
        // The header's built-ins are globals of each library; one launch at a time.
        static LAUNCH: Mutex<()> = Mutex::new(());
        let _one = LAUNCH.lock().unwrap_or_else(|p| p.into_inner());
        let launch: LaunchFn = self.kernel("emu_launch");
        let dims = [grid[0], grid[1], grid[2], block[0], block[1], block[2]];
        let mut err = vec![0 as c_char; 512];
        // SAFETY: the launcher calls `trampoline::<F>` with `&body` only during this call.
        let rc = unsafe {
            launch(
                dims.as_ptr(),
                shared,
                (order == Order::Reverse) as c_int,
                trampoline::<F>,
                &body as *const F as *mut c_void,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        if rc != 0 {
            let msg = unsafe { CStr::from_ptr(err.as_ptr()) };
            panic!("{}: {}", self.path, msg.to_string_lossy());
        }
    }
}

/// A value type a kernel reads or writes, with the bits used to fill guards.
pub trait Elem: Copy + PartialEq + std::fmt::Debug {
    const GUARD: Self;
    fn same(a: Self, b: Self) -> bool;
}
impl Elem for f32 {
    const GUARD: f32 = f32::from_bits(0x7fc0_dead);
    fn same(a: f32, b: f32) -> bool {
        a.to_bits() == b.to_bits()
    }
}
impl Elem for f64 {
    const GUARD: f64 = f64::from_bits(0x7ff8_dead_dead_dead);
    fn same(a: f64, b: f64) -> bool {
        a.to_bits() == b.to_bits()
    }
}
impl Elem for i32 {
    const GUARD: i32 = 0x5a5a_5a5a;
    fn same(a: i32, b: i32) -> bool {
        a == b
    }
}

const GUARD: usize = 64;

/// "Device memory": a vector with guard cells on both sides, NaN for floats,
/// so a read past the end poisons the result and a write past it is caught.
pub struct Dev<T: Elem> {
    v: Vec<T>,
}

impl<T: Elem> Dev<T> {
    pub fn new(data: &[T]) -> Dev<T> {
        let mut v = vec![T::GUARD; data.len() + 2 * GUARD];
        v[GUARD..GUARD + data.len()].copy_from_slice(data);
        Dev { v }
    }
    pub fn filled(n: usize, value: T) -> Dev<T> {
        Dev::new(&vec![value; n])
    }
    pub fn p(&mut self) -> *mut T {
        self.v[GUARD..].as_mut_ptr()
    }
    pub fn c(&self) -> *const T {
        self.v[GUARD..].as_ptr()
    }
    /// The contents, after checking that no kernel wrote outside them.
    pub fn get(&self) -> Vec<T> {
        let n = self.v.len() - 2 * GUARD;
        for (i, &g) in self.v[..GUARD]
            .iter()
            .chain(&self.v[GUARD + n..])
            .enumerate()
        {
            assert!(
                T::same(g, T::GUARD),
                "a kernel wrote guard cell {i} outside a buffer of {n}"
            );
        }
        self.v[GUARD..GUARD + n].to_vec()
    }
}

/// |a − e| ≤ tol·(1 + |e|) element-wise, naming the first mismatch.
pub fn assert_near(actual: &[f32], expected: &[f32], tol: f64, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let ok = (a as f64 - e as f64).abs() <= tol * (1.0 + (e as f64).abs());
        assert!(
            ok || (a.is_nan() && e.is_nan()),
            "{what}: element {i}: kernel {a}, CPU path {e} (tolerance {tol})"
        );
    }
}
