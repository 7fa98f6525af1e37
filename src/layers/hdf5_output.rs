//! HDF5Output: writes its two bottoms to an HDF5 file as the datasets "data" and "label"
//! (shapes as the bottoms'), float32. Every forward rewrites the file with that batch.
//! No tops, no backward.

use super::{required, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::data::hdf5;
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Hdf5OutputParams {
    pub file_name: Option<String>,
}

pub struct Hdf5OutputLayer {
    pub params: Hdf5OutputParams,
    pub path: PathBuf,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: Hdf5OutputParams = def.params("hdf5_output_param")?;
    let path = PathBuf::from(required(
        def,
        p.file_name.as_deref(),
        "hdf5_output_param",
        "file_name",
    )?);
    Ok(Box::new(Hdf5OutputLayer { params: p, path }))
}

impl Layer for Hdf5OutputLayer {
    fn type_name(&self) -> &'static str {
        "HDF5Output"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(2)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(0)
    }
    fn can_backprop_to(&self, _bottom: usize) -> bool {
        false
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        super::loss::check_same_num(bottom, 1)?;
        Ok(vec![])
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (data, label) = (io.bottom(0), io.bottom(1));
        hdf5::write(
            &self.path,
            &[
                ("data", data.shape(), data.data()),
                ("label", label.shape(), label.data()),
            ],
        )
    }

    fn backward(
        &mut self,
        _io: &mut LayerIo,
        _propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        Ok(())
    }
}
