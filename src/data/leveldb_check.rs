//! Checks of LevelDB files made before the reader uses them.
//!
//! The reader (rusty-leveldb) skips a table block whose checksum fails and
//! stops replaying a log at its first bad record, without a word: a damaged
//! database would silently read as a shorter one. So each file is checked
//! once, whole, when the reader first opens it:
//!
//! * a table (`.ldb`, `.sst`): the last 48 bytes are the footer — the
//!   metaindex and index block handles (two varints each: offset, size),
//!   zero padding, then the magic number 0xdb4775248b80fb57 (little endian).
//!   Every block on disk is its bytes, a compression byte (0 none, 1 Snappy)
//!   and a masked CRC-32C of bytes and compression byte. The index block's
//!   entries (prefix-compressed keys; the restart array at its end is not
//!   needed to walk them) hold the handles of the data blocks; each one is
//!   read, its checksum compared and, when compressed, decompressed.
//! * a log (`.log`) or manifest (`MANIFEST-*`): 32 KiB blocks of records, a
//!   record being a masked CRC-32C (4 bytes), a length (u16) and a type byte,
//!   then the payload; the CRC covers type and payload. A block's last 6
//!   bytes or fewer are zero padding.

use std::path::Path;

const MAGIC: u64 = 0xdb47_7524_8b80_fb57;
const FOOTER: usize = 48;
const LOG_BLOCK: usize = 32768;
const LOG_HEADER: usize = 7;

static CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// LevelDB's stored form of a CRC: rotated right by 15 bits plus a constant,
/// so that a CRC of bytes holding CRCs is not itself a plain CRC.
fn masked_crc(parts: &[&[u8]]) -> u32 {
    let mut d = CRC32C.digest();
    for p in parts {
        d.update(p);
    }
    let c = d.finalize();
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?))
}

/// A base-128 varint at `*at`, advancing it; None past the end or over 64 bits.
fn varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// (offset, size) of a block handle at `*at`.
fn handle(b: &[u8], at: &mut usize) -> Option<(usize, usize)> {
    let off = usize::try_from(varint(b, at)?).ok()?;
    let size = usize::try_from(varint(b, at)?).ok()?;
    Some((off, size))
}

/// The contents of the block at `(off, size)` of table `file`, checked and decompressed.
fn block(file: &[u8], (off, size): (usize, usize)) -> Result<Vec<u8>, String> {
    let end = off
        .checked_add(size)
        .and_then(|e| e.checked_add(5))
        .filter(|&e| e <= file.len())
        .ok_or_else(|| {
            format!(
                "the block at byte {off} ({size} bytes) runs past the end of the file ({} bytes)",
                file.len()
            )
        })?;
    let (data, kind) = (&file[off..off + size], file[off + size]);
    let stored = u32_at(file, end - 4).expect("bounds checked above");
    if masked_crc(&[data, &[kind]]) != stored {
        return Err(format!("the block at byte {off} fails its checksum"));
    }
    match kind {
        0 => Ok(data.to_vec()),
        1 => snap::raw::Decoder::new()
            .decompress_vec(data)
            .map_err(|e| format!("the block at byte {off} is not valid Snappy data: {e}")),
        k => Err(format!(
            "the block at byte {off} has unknown compression {k}"
        )),
    }
}

/// The values of a block's entries (each entry: shared, unshared and value
/// lengths as varints, the unshared key bytes, the value).
fn entry_values(b: &[u8]) -> Option<Vec<&[u8]>> {
    let restarts = u32_at(b, b.len().checked_sub(4)?)? as usize;
    let end = b.len().checked_sub(4 + restarts.checked_mul(4)?)?;
    let mut at = 0;
    let mut values = Vec::new();
    while at < end {
        let _shared = varint(b, &mut at)?;
        let unshared = usize::try_from(varint(b, &mut at)?).ok()?;
        let len = usize::try_from(varint(b, &mut at)?).ok()?;
        let start = at.checked_add(unshared)?;
        at = start.checked_add(len)?;
        values.push(b.get(start..at)?);
    }
    Some(values)
}

/// Checks the table file `path` as the module docs say.
pub fn verify_table(path: &Path) -> Result<(), String> {
    let file = std::fs::read(path).map_err(|e| e.to_string())?;
    if file.len() < FOOTER {
        return Err(format!(
            "{} bytes is too short for a table (its footer alone is {FOOTER})",
            file.len()
        ));
    }
    let footer = &file[file.len() - FOOTER..];
    let magic = u64::from_le_bytes(footer[40..].try_into().expect("8 bytes"));
    if magic != MAGIC {
        return Err("no table footer (wrong magic number at the end)".into());
    }
    let mut at = 0;
    let (meta, index) = handle(footer, &mut at)
        .zip(handle(footer, &mut at))
        .ok_or("the footer's block handles are unreadable")?;
    block(&file, meta).map_err(|e| format!("metaindex: {e}"))?;
    let index = block(&file, index).map_err(|e| format!("index: {e}"))?;
    let handles = entry_values(&index).ok_or("the index block's entries are unreadable")?;
    for h in handles {
        let data = handle(h, &mut 0).ok_or("an index entry is not a block handle")?;
        block(&file, data)?;
    }
    Ok(())
}

/// Checks the log or manifest file `path` as the module docs say.
pub fn verify_log(path: &Path) -> Result<(), String> {
    let file = std::fs::read(path).map_err(|e| e.to_string())?;
    for (b, chunk) in file.chunks(LOG_BLOCK).enumerate() {
        let mut at = 0;
        while chunk.len() - at >= LOG_HEADER {
            let off = b * LOG_BLOCK + at;
            let h = &chunk[at..at + LOG_HEADER];
            let len = usize::from(u16::from_le_bytes([h[4], h[5]]));
            let kind = h[6];
            if kind == 0 && len == 0 {
                // Zeroes: preallocated space or a padded block end.
                break;
            }
            let payload = chunk
                .get(at + LOG_HEADER..at + LOG_HEADER + len)
                .ok_or_else(|| format!("the record at byte {off} runs past its block"))?;
            let stored = u32_at(h, 0).expect("7 bytes");
            if masked_crc(&[&[kind], payload]) != stored {
                return Err(format!("the record at byte {off} fails its checksum"));
            }
            at += LOG_HEADER + len;
        }
    }
    Ok(())
}
