//! C = op(A)·op(B) (+ C), batched; transposes are strides.
//!
//! In one place: the CPU twin (the plain reference every WGSL kernel is checked against), the GPU launch
//! with the shader's uniform block as a typed struct and its bindings by name (the kernel is
//! `shaders/matmul.wgsl`), and the self-check cases.

use super::cpu_math::for_row_chunks;
use super::{CheckShape, Shader};
use crate::bail;
use crate::engine::gpu::{GpuBackend, GpuTensor};
use crate::engine::{MatmulSpec, Op};
use crate::error::Result;

pub const SHADER: Shader = Shader { name: "matmul", source: include_str!("../../../shaders/matmul.wgsl"), entries: &["main"] };

// ---- CPU twin

/// C = op(A)·op(B) (+ C), see [`MatmulSpec`]. Transposes are just other strides.
///
/// A batch of many small products (attention's per-head products: hundreds of 32×32×16 GEMMs per call) is
/// split over the run's threads by product, each product computed whole by one thread; matrixmultiply on
/// its own does not parallelise products that small. (A hand-written register-blocked kernel for them
/// measured up to 2× slower per product than matrixmultiply's, packing included, and was dropped.)
pub fn matmul(a: &[f32], b: &[f32], c: &mut [f32], spec: MatmulSpec) {
    let MatmulSpec { m, n, k, .. } = spec;
    if spec.batch > 1 && m * n * k <= SMALL_PRODUCT {
        for_row_chunks(c, m * n, |first, c| {
            for (i, c) in c.chunks_exact_mut(m * n).enumerate() {
                let batch = first + i;
                product(&a[batch * m * k..(batch + 1) * m * k], &b[batch * k * n..(batch + 1) * k * n], c, spec);
            }
        });
        return;
    }
    for i in 0..spec.batch {
        product(&a[i * m * k..(i + 1) * m * k], &b[i * k * n..(i + 1) * k * n], &mut c[i * m * n..(i + 1) * m * n], spec);
    }
}

/// Products up to this many multiply-adds (64³) count as small.
const SMALL_PRODUCT: usize = 64 * 64 * 64;

/// One product of the batch: `a`, `b` and `c` hold exactly its m·k, k·n and m·n values.
fn product(a: &[f32], b: &[f32], c: &mut [f32], spec: MatmulSpec) {
    let MatmulSpec { m, n, k, accumulate, .. } = spec;
    let (ars, acs) = spec.a_strides();
    let (brs, bcs) = spec.b_strides();
    let beta = if accumulate { 1.0 } else { 0.0 };
    // SAFETY: the slices hold exactly m·k, k·n and m·n values (checked by MatmulSpec::check and the
    // callers' slicing), and the strides address only inside them.
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

// ---- GPU launch

/// The shader's `Params` uniform block, field for field (16-byte multiple).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    batch: u32,
    m: u32,
    n: u32,
    k: u32,
    a_row: u32,
    a_col: u32,
    b_row: u32,
    b_col: u32,
    accumulate: u32,
    _pad: [u32; 3],
}

/// Binding numbers of the shader's storage buffers (0 is the uniform block).
mod binding {
    pub const A: u32 = 1;
    pub const B: u32 = 2;
    pub const C: u32 = 3;
}

pub(crate) fn run_cpu(op: &Op, i: &[&[f32]], o: &mut [&mut [f32]]) {
    if let Op::Matmul(spec) = *op {
        matmul(i[0], i[1], o[0], spec)
    }
}

/// One 32×32 tile of C per workgroup, batches in z.
pub(crate) fn run_gpu(g: &GpuBackend, op: &Op, t: &[&GpuTensor]) -> Result<()> {
    let Op::Matmul(spec) = *op else { unreachable!("matmul::run_gpu got {}", op.name()) };
    let groups = [spec.n.div_ceil(32), spec.m.div_ceil(32), spec.batch];
    if let Some(n) = groups.iter().find(|&&n| n > g.max_groups()) {
        bail!("matmul: {spec:?} needs {n} workgroups in one dimension; this adapter allows {}", g.max_groups());
    }
    let ((a_row, a_col), (b_row, b_col)) = (spec.a_strides(), spec.b_strides());
    let u = |v: usize| v as u32;
    let p = Params { batch: u(spec.batch), m: u(spec.m), n: u(spec.n), k: u(spec.k), a_row: u(a_row), a_col: u(a_col), b_row: u(b_row), b_col: u(b_col), accumulate: spec.accumulate as u32, _pad: [0; 3] };
    g.dispatch("matmul.main", bytemuck::bytes_of(&p), &[(binding::A, t[0]), (binding::B, t[1]), (binding::C, t[2])], groups);
    Ok(())
}

/// Every transpose combination at 1-wide edges and sizes that are no multiple of the tile, batched and
/// accumulating variants.
pub(crate) fn selfcheck_ops(_: &CheckShape) -> Vec<Op> {
    let mut specs = Vec::new();
    for (m, n, k) in [(1, 1, 1), (1, 37, 5), (37, 1, 5), (33, 65, 17), (5, 7, 130), (64, 32, 48)] {
        for (a_transposed, b_transposed) in [(false, false), (false, true), (true, false), (true, true)] {
            specs.push(MatmulSpec { batch: 1, m, n, k, a_transposed, b_transposed, accumulate: false });
        }
    }
    specs.push(MatmulSpec { batch: 3, m: 7, n: 13, k: 29, a_transposed: false, b_transposed: true, accumulate: false });
    specs.push(MatmulSpec { batch: 2, m: 9, n: 5, k: 11, a_transposed: true, b_transposed: false, accumulate: true });
    specs.push(MatmulSpec { batch: 1, m: 33, n: 65, k: 17, a_transposed: true, b_transposed: false, accumulate: true });
    specs.into_iter().map(Op::Matmul).collect()
}
