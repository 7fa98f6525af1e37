//! Im2col: the column matrix of a convolution as a blob (`convolution_param`'s kernel,
//! stride, pad and dilation; the other fields are not used).
//! Legend: bottom N × C × H × W; kh × kw kernel, s stride, p pad, d dilation;
//! Ho = ⌊(H + 2p − d·(kh − 1) − 1)/s⌋ + 1 (and Wo alike). Top N × C·kh·kw × Ho × Wo:
//!   y[n, (c·kh + i)·kw + j, oy, ox] = x[n, c, oy·s − p + i·d, ox·s − p + j·d]  (0 outside the image).
//! Backward (col2im): dx[n, c, h, w] = Σ of dy over every (i, j, oy, ox) that read (h, w).

use super::convolution::{geometry, ConvolutionParams, Geometry};
use super::{fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::backend::im2col::{col2im, im2col, Window};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;

pub struct Im2colLayer {
    pub geometry: Geometry,
    window: Option<Window>,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: ConvolutionParams = def.params("convolution_param")?;
    if p.axis != 1 {
        return Err(super::checks::param_error(
            def,
            "convolution_param",
            "axis",
            "only axis 1 (channels) is supported",
        ));
    }
    Ok(Box::new(Im2colLayer {
        geometry: geometry(def, &p)?,
        window: None,
    }))
}

impl Layer for Im2colLayer {
    fn type_name(&self) -> &'static str {
        "Im2col"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(1)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let x = &bottom[0];
        let [n, c, h, w] = x[..] else {
            return Err(ShapeError::at_bottom(
                0,
                format!("needs an NxCxHxW bottom, got {}", fmt_shape(x)),
            ));
        };
        let g = &self.geometry;
        let (Some(ho), Some(wo)) = (g.out_len(0, h), g.out_len(1, w)) else {
            return Err(ShapeError::at_bottom(
                0,
                format!(
                    "the {}x{} kernel (dilation {}x{}) does not fit the {h}x{w} input padded by {}x{}",
                    g.kernel[0], g.kernel[1], g.dilation[0], g.dilation[1], g.pad[0], g.pad[1]
                ),
            ));
        };
        let window = Window {
            channels: c,
            height: h,
            width: w,
            kernel: g.kernel,
            pad: g.pad,
            stride: g.stride,
            dilation: g.dilation,
            out: [ho, wo],
        };
        self.window = Some(window);
        Ok(vec![vec![n, window.col_rows(), ho, wo]])
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let w = self.window.ok_or("Im2col ran before its reshape")?;
        let (bottoms, mut tops, _) = io.forward_split();
        let (ins, outs) = (w.channels * w.height * w.width, w.col_rows() * w.col_cols());
        for (x, y) in bottoms[0]
            .data()
            .chunks(ins.max(1))
            .zip(tops[0].data_mut().chunks_mut(outs.max(1)))
        {
            im2col(&w, x, y);
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
        let w = self.window.ok_or("Im2col ran before its reshape")?;
        let (mut bottoms, tops, _) = io.backward_split();
        let (ins, outs) = (w.channels * w.height * w.width, w.col_rows() * w.col_cols());
        for (dx, dy) in bottoms[0]
            .diff_mut()
            .chunks_mut(ins.max(1))
            .zip(tops[0].diff().chunks(outs.max(1)))
        {
            col2im(&w, dy, dx);
        }
        Ok(())
    }
}
