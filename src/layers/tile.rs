//! Tile: repeats the blob `tiles` times along `axis`.
//! Legend: bottom viewed as outer × D, outer = count(shape[..axis]), D = count(shape[axis..]);
//! the top is outer × tiles·D with y[o, t·D + i] = x[o, i], and dx[o, i] = Σ_t dy[o, t·D + i].

use super::loss::axis_of;
use super::{required, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TileParams {
    pub axis: i32,
    /// Required, positive.
    pub tiles: Option<i32>,
}

impl Default for TileParams {
    fn default() -> Self {
        TileParams {
            axis: 1,
            tiles: None,
        }
    }
}

pub struct TileLayer {
    pub params: TileParams,
    tiles: usize,
    axis: usize,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: TileParams = def.params("tile_param")?;
    let tiles = required(def, p.tiles, "tile_param", "tiles")?;
    if tiles < 1 {
        return Err(super::checks::param_error(
            def,
            "tile_param",
            "tiles",
            &format!("tiles must be at least 1, got {tiles}"),
        ));
    }
    Ok(Box::new(TileLayer {
        params: p,
        tiles: tiles as usize,
        axis: 0,
    }))
}

impl Layer for TileLayer {
    fn type_name(&self) -> &'static str {
        "Tile"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(1)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        self.axis = axis_of(self.params.axis, &bottom[0], 0)?;
        let mut top = bottom[0].clone();
        top[self.axis] *= self.tiles;
        Ok(vec![top])
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, _) = io.forward_split();
        let d = bottoms[0].count_from(self.axis).max(1);
        let y = tops[0].data_mut();
        for (y, x) in y
            .chunks_mut(d * self.tiles)
            .zip(bottoms[0].data().chunks(d))
        {
            y.chunks_mut(d).for_each(|t| t.copy_from_slice(x));
        }
        Ok(())
    }

    fn backward(
        &mut self,
        io: &mut LayerIo,
        propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        if !propagate_down[0] {
            return Ok(());
        }
        let (mut bottoms, tops, _) = io.backward_split();
        let d = bottoms[0].count_from(self.axis).max(1);
        let dx = bottoms[0].diff_mut();
        for (dx, dy) in dx.chunks_mut(d).zip(tops[0].diff().chunks(d * self.tiles)) {
            dx.fill(0.0);
            for t in dy.chunks(d) {
                dx.iter_mut().zip(t).for_each(|(a, &b)| *a += b);
            }
        }
        Ok(())
    }
}
