//! Checks of an LMDB file made before it is memory-mapped, and a last-resort
//! SIGBUS handler for what cannot be checked.
//!
//! LMDB maps `data.mdb` and follows page numbers it finds in it; a page past
//! the end of a truncated file is a SIGBUS, with no message. So before
//! opening: both meta pages (pages 0 and 1) are read, the newest valid one
//! gives the page size, the last page number used and the main tree's root;
//! the file must hold every page up to the last, the root must be a branch
//! or leaf page that knows its own number, and every branch page reachable
//! from the root must point only at pages inside the file. Leaf contents are
//! checked as records are read (the Datum decoder). Layout (LMDB's, little
//! endian on x86-64): page header = pgno u64, pad u16, flags u16, lower u16,
//! upper u16; meta at byte 16: magic u32 0xBEEFC0DE, version u32, address,
//! mapsize, two 48-byte tree records (the free tree's first u32 is the page
//! size; a tree's entries at +32, root at +40), last page u64, txn id u64.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

const MAGIC: u32 = 0xBEEF_C0DE;
const P_BRANCH: u16 = 0x01;
const P_LEAF: u16 = 0x02;
const P_INVALID: u64 = u64::MAX;

struct Meta {
    psize: u64,
    last_pg: u64,
    root: u64,
    txnid: u64,
}

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?))
}

fn meta(page: &[u8]) -> Option<Meta> {
    if u32_at(page, 16)? != MAGIC {
        return None;
    }
    let psize = u64::from(u32_at(page, 40)?);
    if !(512..=65536).contains(&psize) || !psize.is_power_of_two() {
        return None;
    }
    Some(Meta {
        psize,
        root: u64_at(page, 88 + 40)?,
        last_pg: u64_at(page, 136)?,
        txnid: u64_at(page, 144)?,
    })
}

/// Verifies `<dir>/data.mdb` as the module docs say; the error says what is wrong.
pub fn verify(dir: &Path) -> Result<(), String> {
    let path = dir.join("data.mdb");
    let mut file =
        std::fs::File::open(&path).map_err(|e| format!("cannot open `{}`: {e}", path.display()))?;
    let size = file.metadata().map_err(|e| e.to_string())?.len();
    let damaged = |what: String| format!("`{}` is damaged: {what}", path.display());
    let mut first = vec![0u8; 4096.min(size as usize)];
    file.read_exact(&mut first).map_err(|e| e.to_string())?;
    let m0 = meta(&first);
    let psize = m0.as_ref().map_or(4096, |m| m.psize);
    let mut second = vec![0u8; 160];
    let m1 = if size >= psize + 160 {
        file.seek(SeekFrom::Start(psize))
            .map_err(|e| e.to_string())?;
        file.read_exact(&mut second).map_err(|e| e.to_string())?;
        meta(&second)
    } else {
        None
    };
    let m = match (m0, m1) {
        (Some(a), Some(b)) => {
            if b.txnid > a.txnid && b.psize == a.psize {
                b
            } else {
                a
            }
        }
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => {
            return Err(damaged(
                "neither of its two meta pages is an LMDB meta page".into(),
            ))
        }
    };
    let need = m
        .last_pg
        .checked_add(1)
        .and_then(|n| n.checked_mul(m.psize));
    match need {
        Some(n) if n <= size => {}
        _ => {
            return Err(damaged(format!(
                "it is {size} bytes but its meta page records {} pages of {} bytes: the file was truncated",
                m.last_pg.saturating_add(1),
                m.psize
            )))
        }
    }
    if m.root == P_INVALID {
        return Ok(());
    }
    walk(&mut file, &m, m.root, 0).map_err(damaged)
}

/// Checks page `pgno` and, for a branch page, its children.
fn walk(file: &mut std::fs::File, m: &Meta, pgno: u64, depth: usize) -> Result<(), String> {
    if pgno < 2 || pgno > m.last_pg {
        return Err(format!(
            "a tree page points at page {pgno}, outside pages 2..={}",
            m.last_pg
        ));
    }
    if depth > 64 {
        return Err("its tree is deeper than 64 levels".into());
    }
    let mut page = vec![0u8; m.psize as usize];
    file.seek(SeekFrom::Start(pgno * m.psize))
        .map_err(|e| e.to_string())?;
    file.read_exact(&mut page)
        .map_err(|e| format!("page {pgno}: {e}"))?;
    let bad = || format!("page {pgno} is not a tree page");
    if u64_at(&page, 0).ok_or_else(bad)? != pgno {
        return Err(format!(
            "page {pgno} records itself as page {}",
            u64_at(&page, 0).unwrap_or(0)
        ));
    }
    let flags = u16_at(&page, 10).ok_or_else(bad)?;
    if flags & P_LEAF != 0 {
        return Ok(());
    }
    if flags & P_BRANCH == 0 {
        return Err(bad());
    }
    let lower = usize::from(u16_at(&page, 12).ok_or_else(bad)?);
    if lower < 16 || lower > page.len() {
        return Err(bad());
    }
    for k in 0..(lower - 16) / 2 {
        let at = usize::from(u16_at(&page, 16 + 2 * k).ok_or_else(bad)?);
        let lo = u64::from(u16_at(&page, at).ok_or_else(bad)?);
        let hi = u64::from(u16_at(&page, at + 2).ok_or_else(bad)?);
        let top = u64::from(u16_at(&page, at + 4).ok_or_else(bad)?);
        walk(file, m, lo | hi << 16 | top << 32, depth + 1)?;
    }
    Ok(())
}

/// The database most recently opened, for the SIGBUS message (NUL-padded).
static mut LAST_OPENED: [u8; 512] = [0; 512];

/// Remembers `dir` for the SIGBUS message and installs the handler once: if
/// the OS still raises SIGBUS on a mapped file (changed or cut while in use),
/// the process prints which database and exits with status 74 (EX_IOERR)
/// instead of dying without a word.
pub fn guard(dir: &Path) {
    use std::os::unix::ffi::OsStrExt;
    static INSTALL: std::sync::Once = std::sync::Once::new();
    let bytes = dir.as_os_str().as_bytes();
    let n = bytes.len().min(511);
    // SAFETY: written only here, under the reader registry's lock; the handler
    // only reads it, and a torn name in a dying process's message is harmless.
    unsafe {
        let buf = &mut *std::ptr::addr_of_mut!(LAST_OPENED);
        buf[..n].copy_from_slice(&bytes[..n]);
        buf[n] = 0;
    }
    INSTALL.call_once(|| {
        // SAFETY: a plain sigaction with a handler that only calls write(2) and _exit(2).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigbus as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut());
        }
    });
}

extern "C" fn on_sigbus(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let head = b"error: bus error reading a memory-mapped LMDB database (last opened: ";
    let tail = b"): its data.mdb is damaged or was changed while in use\n";
    // SAFETY: async-signal-safe calls only (write, _exit) on a static buffer.
    unsafe {
        let buf = &*std::ptr::addr_of!(LAST_OPENED);
        let n = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        libc::write(2, head.as_ptr().cast(), head.len());
        libc::write(2, buf.as_ptr().cast(), n);
        libc::write(2, tail.as_ptr().cast(), tail.len());
        libc::_exit(74);
    }
}
