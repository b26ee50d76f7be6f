//! The CPU backend: one plain function per kernel. These are the twins every WGSL kernel is tested
//! against, so they favour being obviously right; GEMM goes to `matrixmultiply` because a hand-written
//! loop would be 50× slower and no clearer.

use super::MatmulSpec;

pub struct CpuBackend;

/// C = op(A)·op(B) (+ C), see [`MatmulSpec`]. Transposes are just other strides.
pub fn matmul(a: &[f32], b: &[f32], c: &mut [f32], spec: MatmulSpec) {
    let MatmulSpec { batch, m, n, k, accumulate, .. } = spec;
    let (ars, acs) = spec.a_strides();
    let (brs, bcs) = spec.b_strides();
    let beta = if accumulate { 1.0 } else { 0.0 };
    for i in 0..batch {
        let a = &a[i * m * k..(i + 1) * m * k];
        let b = &b[i * k * n..(i + 1) * k * n];
        let c = &mut c[i * m * n..(i + 1) * m * n];
        // SAFETY: the slices hold exactly m·k, k·n and m·n values (checked by MatmulSpec::check and the
        // slicing above), and the strides address only inside them.
        unsafe {
            matrixmultiply::sgemm(
                m, k, n, 1.0,
                a.as_ptr(), ars as isize, acs as isize,
                b.as_ptr(), brs as isize, bcs as isize,
                beta,
                c.as_mut_ptr(), n as isize, 1,
            );
        }
    }
}

/// Numerically stable softmax of each row of `cols` values: subtract the row max before exp.
pub fn softmax_rows(x: &[f32], y: &mut [f32], cols: usize) {
    for (xr, yr) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
        let max = xr.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for (o, &v) in yr.iter_mut().zip(xr) {
            *o = (v - max).exp();
            sum += *o;
        }
        let inv = 1.0 / sum;
        yr.iter_mut().for_each(|o| *o *= inv);
    }
}
