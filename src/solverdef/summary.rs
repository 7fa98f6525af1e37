//! The solver part of `netrun check`.

use super::*;

/// The solver part of `netrun check`.
pub fn summary(s: &SolverDef) -> String {
    let p = &s.params;
    let mut rows: Vec<(String, String)> = vec![];
    let mut update = p.type_name.clone();
    let num = |x: f32| fmt_num(x as f64);
    match p.type_name.as_str() {
        "SGD" | "Nesterov" => update += &format!(", momentum {}", num(p.momentum)),
        "AdaGrad" => update += &format!(", delta {}", num(p.delta)),
        "RMSProp" => update += &format!(", rms_decay {}, delta {}", num(p.rms_decay), num(p.delta)),
        "AdaDelta" => update += &format!(", momentum {}, delta {}", num(p.momentum), num(p.delta)),
        _ => {
            update += &format!(
                ", momentum {}, momentum2 {}, delta {}",
                num(p.momentum),
                num(p.momentum2),
                num(p.delta)
            )
        }
    }
    update += &format!(
        ", weight_decay {} ({})",
        num(p.weight_decay),
        p.regularization_type
    );
    if p.clip_gradients >= 0.0 {
        update += &format!(", gradients clipped to L2 norm {}", num(p.clip_gradients));
    }
    rows.push(("type".into(), update));
    rows.push(("lr".into(), describe_schedule(p)));
    let mut iters = format!("{} iterations", p.max_iter);
    if p.iter_size > 1 {
        iters += &format!(" of {} accumulated passes", p.iter_size);
    }
    if p.display > 0 {
        iters += &format!(", display every {}", p.display);
    }
    rows.push(("max_iter".into(), iters));
    let mut snap = vec![];
    if p.snapshot > 0 {
        snap.push(format!("every {} iterations", p.snapshot));
    }
    // Caffe's final snapshot is skipped when a periodic one already fell on max_iter.
    if p.snapshot_after_train && (p.snapshot <= 0 || p.max_iter % p.snapshot != 0) {
        snap.push(format!("at the end ({})", p.max_iter));
    }
    let snap = if snap.is_empty() {
        "off".to_string()
    } else {
        let note = match p.snapshot_format {
            None => "safetensors",
            Some(SnapshotFormat::BinaryProto) => "safetensors, and the weights as .caffemodel",
            Some(SnapshotFormat::Hdf5) => {
                "safetensors; snapshot_format HDF5 is accepted but not written"
            }
        };
        format!(
            "{} to {}_iter_N ({note})",
            snap.join(" and "),
            s.snapshot_prefix()
        )
    };
    rows.push(("snapshot".into(), snap));
    if p.solver_mode == SolverMode::Gpu {
        rows.push((
            "solver_mode".into(),
            "GPU (no device backend in this build: `netrun train` refuses it; `--cpu` trains on the CPU)".into(),
        ));
    }
    rows.push(("train net".into(), s.train_net.describe(&s.source)));
    for (i, t) in s.test_nets.iter().enumerate() {
        let mut d = t.describe(&s.source);
        d += &format!(
            ", {} forward passes every {} iterations{}",
            t.test_iter.unwrap_or(0),
            p.test_interval,
            if p.test_initialization {
                ", first at 0"
            } else {
                ""
            }
        );
        rows.push((format!("test net #{i}"), d));
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = format!("solver {}\n", s.source.path.display());
    for (k, v) in rows {
        out += &format!("  {k:<width$}  {v}\n");
    }
    out
}
