//! `netrun device`: the CUDA devices a `--gpu N` or `device_id` can name.

use netrun::Error;

#[cfg(feature = "cuda")]
pub fn run() -> Result<(), Error> {
    let devices = netrun::backend::cuda::devices().map_err(|e| Error::Other(e.to_string()))?;
    if devices.is_empty() {
        println!("no CUDA devices (the driver is loaded but reports none)");
    }
    for d in devices {
        println!(
            "GPU {}: {}, {:.1} GiB, compute capability {}.{}",
            d.ordinal,
            d.name,
            d.total_memory as f64 / (1u64 << 30) as f64,
            d.compute_capability.0,
            d.compute_capability.1
        );
    }
    Ok(())
}

#[cfg(not(feature = "cuda"))]
pub fn run() -> Result<(), Error> {
    Err(Error::Other(netrun::backend::no_gpu_message(
        "netrun device",
    )))
}
