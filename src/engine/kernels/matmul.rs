//! C = op(A)·op(B) (+ C), batched; transposes are strides.
//!
//! In one place: the CPU twin (the plain reference every WGSL kernel is checked against), the GPU launch
//! with the shader's uniform block as a typed struct and its bindings by name (the kernel is
//! `shaders/matmul.wgsl`), and the self-check cases.

use super::cpu_math::{for_row_chunks, vectorised};
use super::{CheckShape, Shader};
use crate::bail;
use crate::engine::gpu::{GpuBackend, GpuTensor};
use crate::engine::{MatmulSpec, Op};
use crate::error::Result;

pub const SHADER: Shader = Shader { name: "matmul", source: include_str!("../../../shaders/matmul.wgsl"), entries: &["main"] };

// ---- CPU twin

/// C = op(A)·op(B) (+ C), see [`MatmulSpec`]. Transposes are just other strides.
///
/// Many small products (attention's per-head products: 32×32×16, hundreds per call) go to
/// [`small_products`]: matrixmultiply packs both operands for every product, which costs more than the
/// product itself at these sizes.
pub fn matmul(a: &[f32], b: &[f32], c: &mut [f32], spec: MatmulSpec) {
    let MatmulSpec { batch, m, n, k, accumulate, .. } = spec;
    if batch > 1 && m * n * k <= SMALL_PRODUCT {
        return small_products(a, b, c, spec);
    }
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

/// Products up to this many multiply-adds (64³) count as small.
const SMALL_PRODUCT: usize = 64 * 64 * 64;

/// Each product in register blocks: 4 rows × 8 columns of C summed over k in locals (a loop of fixed-size
/// arrays the compiler turns into vector registers), the few rows and columns beyond whole blocks one value
/// at a time. A transposed B is first copied to row-major (k·n values). Products are split over the run's
/// threads, each computed whole by one thread; every value is Σ_p in ascending p.
fn small_products(a: &[f32], b: &[f32], c: &mut [f32], spec: MatmulSpec) {
    let MatmulSpec { m, n, k, accumulate, b_transposed, .. } = spec;
    let a_strides = spec.a_strides();
    for_row_chunks(c, m * n, |first, c| vectorised(|| {
        let mut b_rows = if b_transposed { vec![0.0; k * n] } else { Vec::new() };
        for (i, c) in c.chunks_exact_mut(m * n).enumerate() {
            let batch = first + i;
            let a = &a[batch * m * k..(batch + 1) * m * k];
            let mut b = &b[batch * k * n..(batch + 1) * k * n];
            if b_transposed {
                for (j, col) in b.chunks_exact(k).enumerate() {
                    for (p, &v) in col.iter().enumerate() {
                        b_rows[p * n + j] = v;
                    }
                }
                b = &b_rows;
            }
            product(a, a_strides, b, c, (m, n, k), accumulate);
        }
    }));
}

/// C (m×n) = op(A)·B (+ C), B row-major k×n, op(A)[i, p] = a[i·ars + p·acs].
#[inline(always)]
fn product(a: &[f32], (ars, acs): (usize, usize), b: &[f32], c: &mut [f32], (m, n, k): (usize, usize, usize), accumulate: bool) {
    const R: usize = 4;
    const L: usize = 8;
    let (whole_rows, whole_cols) = (m / R * R, n / L * L);
    for r0 in (0..whole_rows).step_by(R) {
        for j0 in (0..whole_cols).step_by(L) {
            let mut acc = [[0f32; L]; R];
            for p in 0..k {
                let bv: &[f32; L] = b[p * n + j0..p * n + j0 + L].try_into().expect("L values");
                for (i, acc) in acc.iter_mut().enumerate() {
                    let a_ip = a[(r0 + i) * ars + p * acs];
                    for l in 0..L {
                        acc[l] += a_ip * bv[l];
                    }
                }
            }
            for (i, acc) in acc.iter().enumerate() {
                let row = &mut c[(r0 + i) * n + j0..(r0 + i) * n + j0 + L];
                for l in 0..L {
                    row[l] = if accumulate { row[l] + acc[l] } else { acc[l] };
                }
            }
        }
    }
    // What whole blocks leave: the last columns of the block rows, then the last rows.
    let mut one = |row: usize, j: usize| {
        let s: f32 = (0..k).map(|p| a[row * ars + p * acs] * b[p * n + j]).sum();
        c[row * n + j] = if accumulate { c[row * n + j] + s } else { s };
    };
    for row in 0..whole_rows {
        for j in whole_cols..n {
            one(row, j);
        }
    }
    for row in whole_rows..m {
        for j in 0..n {
            one(row, j);
        }
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
