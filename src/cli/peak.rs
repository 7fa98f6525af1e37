//! `netrun peak`: the machine's measured f32 multiply-add peak per dispatch
//! level, on one thread and on `--threads`, to read `netrun time`'s
//! convolution GFLOP/s against.

use netrun::backend::{self, cpu::peak::fma_peak_gflops, Isa};

#[derive(clap::Args)]
pub struct PeakArgs {
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
}

pub fn peak(a: &PeakArgs) -> netrun::Result<()> {
    let threads = backend::threads();
    println!(
        "f32 FMA peak, GFLOP/s (a multiply-add is 2 FLOPs); CPU has {}",
        Isa::detected()
    );
    println!(
        "{:<8} {:>10} {:>14}",
        "isa",
        "1 thread",
        format!("{threads} threads")
    );
    for isa in Isa::supported() {
        if isa > backend::isa() {
            continue;
        }
        let one = fma_peak_gflops(isa, 1, a.seconds);
        let all = fma_peak_gflops(isa, threads, a.seconds);
        println!("{:<8} {:>10.1} {:>14.1}", isa.name(), one, all);
    }
    Ok(())
}
