//! C = op(A)·op(B) (+ C), batched; transposes are strides.
//!
//! In one place: the CPU twin (the plain reference every WGSL kernel is checked against), the GPU launch
//! with the shader's uniform block as a typed struct and its bindings by name (the kernel is
//! `shaders/matmul.wgsl`), and the self-check cases.

use super::cpu_math::for_row_chunks;
use super::{CheckShape, Shader};
use crate::bail;
use crate::engine::gpu::{GpuBackend, GpuTensor};
use super::elementwise::{add_bias, add_residual_in_place, bias_backward, gelu_backward_in_place, gelu_forward};
use crate::engine::{MatmulSpec, Op, Then};
use crate::error::Result;

pub const SHADER: Shader = Shader { name: "matmul", source: include_str!("../../../shaders/matmul.wgsl"), entries: &["main", "tiled", "reduce_splits"] };

// ---- CPU twin

/// C = op(A)·op(B) (+ C), see [`MatmulSpec`]. Transposes are just other strides.
///
/// A batch of many small products (attention's per-head products: hundreds of 32×32×16 GEMMs per call) is
/// split over the run's threads by product, each product computed whole by one thread. A large product is
/// split over the threads by rows of C. Either way each value of C is computed by one thread in one fixed
/// order, so the result does not depend on the thread count.
pub fn matmul(a: &[f32], b: &[f32], c: &mut [f32], spec: MatmulSpec) {
    matmul_with(a, b, c, spec, chosen_gemm(&spec));
}

/// The two CPU GEMMs: ours, and matrixmultiply's. Ours is the direct kernel natively (op(A) read where it lies, sums
/// in registers, no packing: [`direct`]) and the 4×8 panel kernel in the browser ([`panels`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum CpuGemm {
    Ours,
    Matrixmultiply,
}

/// The GEMM [`matmul`] computes a product of `spec` with. Natively: the direct kernel up to `direct::MAX_N` columns.
/// In the browser: the panel kernel for every single product, matrixmultiply for batches of small ones (attention's
/// per-head products), as `node bench/wasm.mjs --gemm` measured in Chromium (bench/RESULTS.md, session 20).
pub fn chosen_gemm(spec: &MatmulSpec) -> CpuGemm {
    let ours = if cfg!(target_arch = "wasm32") { spec.batch == 1 } else { direct::suits(spec) };
    if ours {
        CpuGemm::Ours
    } else {
        CpuGemm::Matrixmultiply
    }
}

/// [`matmul`] with the GEMM given (the GEMM bench times both on each of a step's shapes).
pub fn matmul_with(a: &[f32], b: &[f32], c: &mut [f32], spec: MatmulSpec, gemm: CpuGemm) {
    let MatmulSpec { m, n, k, .. } = spec;
    if spec.batch > 1 && m * n * k <= SMALL_PRODUCT {
        for_row_chunks(c, m * n, |first, c| {
            for (i, c) in c.chunks_exact_mut(m * n).enumerate() {
                let batch = first + i;
                product(&a[batch * m * k..(batch + 1) * m * k], &b[batch * k * n..(batch + 1) * k * n], c, spec, gemm);
            }
        });
        return;
    }
    for i in 0..spec.batch {
        product(&a[i * m * k..(i + 1) * m * k], &b[i * k * n..(i + 1) * k * n], &mut c[i * m * n..(i + 1) * m * n], spec, gemm);
    }
}

/// Products up to this many multiply-adds (64³) count as small.
const SMALL_PRODUCT: usize = 64 * 64 * 64;

/// One product of the batch: `a`, `b` and `c` hold exactly its m·k, k·n and m·n values.
fn product(a: &[f32], b: &[f32], c: &mut [f32], spec: MatmulSpec, gemm: CpuGemm) {
    if gemm == CpuGemm::Ours {
        if cfg!(target_arch = "wasm32") {
            panels::product(a, b, c, spec);
        } else {
            direct::product(a, b, c, spec);
        }
        return;
    }
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

/// The browser's GEMM: op(A) copied into panels of 4 rows and op(B) into strips of 8 columns, each `KC` steps of k
/// long, and a 4×8 block of C summed in 8 SIMD128 registers (2 per row) per pair of panel and strip. Why 4×8: V8 on
/// x86-64 has 16 vector registers; matrixmultiply's wasm kernel keeps an 8×8 block (16 accumulators, spilled) and the
/// direct kernel 6×16 (24); XNNPACK ships 4×8 for wasm on x86 for the same reason. The copies make every load of the
/// inner loop sequential whatever the transposes. Measured per shape in Chromium against matrixmultiply
/// (`node bench/wasm.mjs --gemm`): faster on every single product of the S and M steps (M: 553 against 787 ms of
/// products per step, relaxed build), slower on attention's batches of 32×32 products, which keep matrixmultiply.
/// Each value of C is, per pass of k, its products summed in ascending k in a register, then added to C.
pub(crate) mod panels {
    use super::direct::lanes;
    use crate::engine::MatmulSpec;

    const MR: usize = 4;
    const NR: usize = 8;
    const KC: usize = 256;
    const MC: usize = 64;
    const NC: usize = 256;
    const PER: usize = NR / lanes::WIDTH;

    pub fn product(a: &[f32], b: &[f32], c: &mut [f32], spec: MatmulSpec) {
        let MatmulSpec { m, n, k, accumulate, .. } = spec;
        let (ars, acs) = spec.a_strides();
        let (brs, bcs) = spec.b_strides();
        if !accumulate {
            c.fill(0.0);
        }
        if k == 0 || m == 0 || n == 0 {
            return;
        }
        let mut bp = vec![0f32; KC * NC.min(n).next_multiple_of(NR)];
        let mut ap = vec![0f32; MC.min(m).next_multiple_of(MR) * KC];
        for jc in (0..n).step_by(NC) {
            let nc = NC.min(n - jc);
            let strips = nc.div_ceil(NR);
            for pc in (0..k).step_by(KC) {
                let kc = KC.min(k - pc);
                for s in 0..strips {
                    let strip = &mut bp[s * kc * NR..(s + 1) * kc * NR];
                    let col0 = jc + s * NR;
                    let cols = NR.min(n - col0);
                    for kk in 0..kc {
                        let row = &mut strip[kk * NR..(kk + 1) * NR];
                        let from = (pc + kk) * brs + col0 * bcs;
                        for (j, v) in row.iter_mut().enumerate() {
                            *v = if j < cols { b[from + j * bcs] } else { 0.0 };
                        }
                    }
                }
                for ic in (0..m).step_by(MC) {
                    let mc = MC.min(m - ic);
                    let panels = mc.div_ceil(MR);
                    for p in 0..panels {
                        let panel = &mut ap[p * kc * MR..(p + 1) * kc * MR];
                        let row0 = ic + p * MR;
                        let rows = MR.min(m - row0);
                        for kk in 0..kc {
                            for r in 0..MR {
                                panel[kk * MR + r] = if r < rows { a[(row0 + r) * ars + (pc + kk) * acs] } else { 0.0 };
                            }
                        }
                    }
                    for s in 0..strips {
                        let col0 = jc + s * NR;
                        let cols = NR.min(n - col0);
                        let bs = &bp[s * kc * NR..(s + 1) * kc * NR];
                        for p in 0..panels {
                            let row0 = ic + p * MR;
                            let rows = MR.min(m - row0);
                            let acc = kernel(kc, &ap[p * kc * MR..(p + 1) * kc * MR], bs);
                            for (r, acc) in acc.iter().enumerate().take(rows) {
                                let dst = &mut c[(row0 + r) * n + col0..][..cols];
                                for (d, v) in dst.iter_mut().zip(acc) {
                                    *d += v;
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[inline(always)]
    fn kernel(kc: usize, a: &[f32], b: &[f32]) -> [[f32; NR]; MR] {
        assert!(a.len() >= kc * MR && b.len() >= kc * NR);
        let mut acc = [[lanes::zero(); PER]; MR];
        for kk in 0..kc {
            // SAFETY: asserted above.
            let bv: [lanes::V; PER] = std::array::from_fn(|v| unsafe { lanes::load(b.as_ptr().add(kk * NR + v * lanes::WIDTH)) });
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = lanes::splat(unsafe { *a.get_unchecked(kk * MR + r) });
                for v in 0..PER {
                    acc[v] = lanes::multiply_add(av, bv[v], acc[v]);
                }
            }
        }
        let mut out = [[0f32; NR]; MR];
        for (o, acc) in out.iter_mut().zip(&acc) {
            for (v, chunk) in o.chunks_exact_mut(lanes::WIDTH).enumerate() {
                chunk.copy_from_slice(&lanes::to_array(acc[v]));
            }
        }
        out
    }
}

/// Whether the GEMMs' multiply-adds round once (see [`direct::multiply_add_fuses`]; matrixmultiply's wasm
/// kernel uses the same relaxed multiply-add in the relaxed build): part of the CPU engine's identity in the
/// browser, where the relaxed-SIMD build leaves the choice to the engine.
pub fn multiply_add_fuses() -> bool {
    direct::multiply_add_fuses()
}

/// Narrow products without packing: C (+)= op(A)·op(B), a block of `MR` rows × `NR` columns of C at a
/// time, its sums in registers. Many of a small model's products are narrow (attention's per-head products,
/// the projections back to d_model, the logits) and tall (m = B·T rows); on them matrixmultiply's copy of
/// A into panels, redone on every call, cost ~40 % of its time (perf, S model). Here A is read where it lies (either layout:
/// a block's values of op(A) are a broadcast each) and only op(B) is copied, when it is transposed or its
/// width is not a whole number of blocks, into k rows padded to whole blocks: k·n values beside m·n·k
/// multiply-adds. Wider products (n > `MAX_N`) go to matrixmultiply.
mod direct {
    use super::super::cpu_math::split_rows;
    use crate::engine::MatmulSpec;

    /// Rows of C per block: 6 broadcasts of op(A) and 2 loads of op(B) feed 12 vector multiply-adds per step
    /// of k, in 12 of AVX2's 16 registers.
    const MR: usize = 6;
    /// Columns of C per block: two AVX2 registers, four SIMD128 ones.
    const NR: usize = 16;
    /// Steps of k per pass over a block of columns: NR·KC values of op(B) (16 KiB) stay in L1.
    const KC: usize = 256;
    /// Widest C computed here. Natively: measured per shape against matrixmultiply when it was written (bench
    /// --profile, one thread), faster up to 64 columns and slower from 128 on. (Session 18's `bench --gemm`
    /// finds matrixmultiply faster on every S shape, and an all-packed S step 18 % faster; it stays, because
    /// the native choice is part of every committed result's last bits.) The browser does not use this kernel:
    /// session 18 measured it slower there than matrixmultiply's on every shape but one ([`super::panels`] is
    /// the browser's).
    const MAX_N: usize = 64;
    /// Below this many multiply-adds a product is not worth a second thread.
    const MIN_SPLIT: usize = 1 << 21;

    pub(super) fn suits(spec: &MatmulSpec) -> bool {
        spec.n <= MAX_N
    }

    pub(super) fn product(a: &[f32], b: &[f32], c: &mut [f32], spec: MatmulSpec) {
        let MatmulSpec { m, n, k, accumulate, .. } = spec;
        let a_strides = spec.a_strides();
        let (brs, bcs) = spec.b_strides();
        if !accumulate {
            c.fill(0.0);
        }
        if k == 0 || m == 0 || n == 0 {
            return;
        }
        let width = n.next_multiple_of(NR);
        let copy: Vec<f32>;
        let (bp, b_row) = if bcs == 1 && n % NR == 0 {
            (b, brs)
        } else {
            copy = padded_rows(b, (brs, bcs), k, n, width);
            (&copy[..], width)
        };
        // Every index the blocks read is in bounds (they read unchecked).
        assert!((m - 1) * a_strides.0 + (k - 1) * a_strides.1 < a.len(), "matmul: op(A) outside its slice");
        assert!((k - 1) * b_row + width <= bp.len(), "matmul: op(B) outside its slice");
        split_rows(c, n, m * n * k >= MIN_SPLIT, |first, c| {
            let rows = c.len() / n;
            // Rows outermost within a pass over k: a block's rows of op(A) stay in L1 while every column
            // block uses them, and the pass's op(B) (KC·n values) stays in L2 for every row block.
            for k0 in (0..k).step_by(KC) {
                let steps = KC.min(k - k0);
                let mut i = 0;
                while i < rows {
                    let r = MR.min(rows - i);
                    for j0 in (0..n).step_by(NR) {
                        let at = Block { a, a_strides, b: bp, b_row, j0, k0, steps, cols: NR.min(n - j0), n };
                        let c = &mut c[i * n..];
                        match r {
                            MR => at.rows::<MR>(first + i, c),
                            1 => at.rows::<1>(first + i, c),
                            2 => at.rows::<2>(first + i, c),
                            3 => at.rows::<3>(first + i, c),
                            4 => at.rows::<4>(first + i, c),
                            _ => at.rows::<5>(first + i, c),
                        }
                    }
                    i += r;
                }
            }
        });
    }

    /// op(B) (k × n, any strides) as k rows of `width` ≥ n values, zero beyond n.
    fn padded_rows(b: &[f32], (brs, bcs): (usize, usize), k: usize, n: usize, width: usize) -> Vec<f32> {
        let mut out = vec![0.0; k * width];
        for (kk, row) in out.chunks_exact_mut(width).enumerate() {
            for (j, v) in row[..n].iter_mut().enumerate() {
                *v = b[kk * brs + j * bcs];
            }
        }
        out
    }

    /// One pass of `steps` values of k over NR columns from `j0` (`cols` of them inside C).
    struct Block<'a> {
        a: &'a [f32],
        a_strides: (usize, usize),
        b: &'a [f32],
        b_row: usize,
        j0: usize,
        k0: usize,
        steps: usize,
        cols: usize,
        n: usize,
    }

    impl Block<'_> {
        /// Adds rows `i0..i0 + R` of this block's product to `c` (C from row i0 on).
        #[inline(always)]
        fn rows<const R: usize>(&self, i0: usize, c: &mut [f32]) {
            let (ars, acs) = self.a_strides;
            let mut acc = [[lanes::zero(); PER_ROW]; R];
            for kk in self.k0..self.k0 + self.steps {
                // SAFETY: `product` asserted that the last row and step of op(A), and NR values past the
                // last column block of op(B), lie inside their slices.
                let b_at = unsafe { self.b.as_ptr().add(kk * self.b_row + self.j0) };
                let b: [lanes::V; PER_ROW] = std::array::from_fn(|v| unsafe { lanes::load(b_at.add(v * lanes::WIDTH)) });
                for (r, acc) in acc.iter_mut().enumerate() {
                    let a = lanes::splat(unsafe { *self.a.get_unchecked((i0 + r) * ars + kk * acs) });
                    for v in 0..PER_ROW {
                        acc[v] = lanes::multiply_add(a, b[v], acc[v]);
                    }
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                let mut sums = [0.0f32; NR];
                for (v, chunk) in sums.chunks_exact_mut(lanes::WIDTH).enumerate() {
                    chunk.copy_from_slice(&lanes::to_array(acc[v]));
                }
                let row = &mut c[r * self.n + self.j0..][..self.cols];
                for (v, s) in row.iter_mut().zip(sums) {
                    *v += s;
                }
            }
        }
    }

    /// Vectors of op(B) per row of a block.
    const PER_ROW: usize = NR / lanes::WIDTH;

    /// Whether this build's multiply-add rounds once (fused). Natively on x86-64-v3 it is FMA; in the
    /// relaxed-SIMD browser build the engine picks (fused where the processor has FMA); in the SIMD128 build it
    /// is a multiply and an add. Measured, not assumed: (1 + 2⁻²³)² − (1 + 2⁻²²) is 2⁻⁴⁶ fused and 0 rounded twice.
    pub(crate) fn multiply_add_fuses() -> bool {
        let a = 1.0f32 + f32::EPSILON;
        let c = -(1.0f32 + 2.0 * f32::EPSILON);
        // black_box: computed at run time by the engine that runs the kernel, not folded by the compiler.
        let (a, c) = std::hint::black_box((a, c));
        lanes::to_array(lanes::multiply_add(lanes::splat(a), lanes::splat(a), lanes::splat(c)))[0] != 0.0
    }

    /// The few vector operations a block needs, on the machine's own lanes: AVX2 with FMA natively (x86_64
    /// builds target x86-64-v3), SIMD128 in the browser (a multiply and an add; relaxed SIMD's multiply-add in
    /// the relaxed build), else plain arrays the compiler may vectorise.
    #[allow(unused_unsafe)]
    pub(super) mod lanes {
        #[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma"))]
        mod imp {
            use std::arch::x86_64::*;
            pub const WIDTH: usize = 8;
            pub type V = __m256;
            #[inline(always)]
            pub fn zero() -> V {
                unsafe { _mm256_setzero_ps() }
            }
            #[inline(always)]
            pub fn splat(a: f32) -> V {
                unsafe { _mm256_set1_ps(a) }
            }
            /// # Safety
            /// `p` points at WIDTH readable values.
            #[inline(always)]
            pub unsafe fn load(p: *const f32) -> V {
                unsafe { _mm256_loadu_ps(p) }
            }
            #[inline(always)]
            pub fn multiply_add(a: V, b: V, c: V) -> V {
                unsafe { _mm256_fmadd_ps(a, b, c) }
            }
            #[inline(always)]
            pub fn to_array(v: V) -> [f32; WIDTH] {
                unsafe { std::mem::transmute::<V, [f32; WIDTH]>(v) }
            }
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        mod imp {
            use std::arch::wasm32::*;
            pub const WIDTH: usize = 4;
            pub type V = v128;
            #[inline(always)]
            pub fn zero() -> V {
                f32x4_splat(0.0)
            }
            #[inline(always)]
            pub fn splat(a: f32) -> V {
                f32x4_splat(a)
            }
            /// # Safety
            /// `p` points at WIDTH readable values.
            #[inline(always)]
            pub unsafe fn load(p: *const f32) -> V {
                unsafe { v128_load(p as *const v128) }
            }
            /// The relaxed-SIMD build (www/pkg-relaxed) asks for a fused multiply-add, as matrixmultiply's wasm
            /// kernel then does; the engine fuses it where the processor has FMA and may round twice elsewhere
            /// (`multiply_add_fuses` says which).
            #[cfg(target_feature = "relaxed-simd")]
            #[inline(always)]
            pub fn multiply_add(a: V, b: V, c: V) -> V {
                f32x4_relaxed_madd(a, b, c)
            }
            #[cfg(not(target_feature = "relaxed-simd"))]
            #[inline(always)]
            pub fn multiply_add(a: V, b: V, c: V) -> V {
                f32x4_add(f32x4_mul(a, b), c)
            }
            #[inline(always)]
            pub fn to_array(v: V) -> [f32; WIDTH] {
                [f32x4_extract_lane::<0>(v), f32x4_extract_lane::<1>(v), f32x4_extract_lane::<2>(v), f32x4_extract_lane::<3>(v)]
            }
        }
        #[cfg(not(any(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma"), all(target_arch = "wasm32", target_feature = "simd128"))))]
        mod imp {
            pub const WIDTH: usize = 4;
            pub type V = [f32; WIDTH];
            #[inline(always)]
            pub fn zero() -> V {
                [0.0; WIDTH]
            }
            #[inline(always)]
            pub fn splat(a: f32) -> V {
                [a; WIDTH]
            }
            /// # Safety
            /// `p` points at WIDTH readable values.
            #[inline(always)]
            pub unsafe fn load(p: *const f32) -> V {
                unsafe { std::ptr::read_unaligned(p as *const V) }
            }
            #[inline(always)]
            pub fn multiply_add(a: V, b: V, c: V) -> V {
                std::array::from_fn(|i| a[i] * b[i] + c[i])
            }
            #[inline(always)]
            pub fn to_array(v: V) -> [f32; WIDTH] {
                v
            }
        }
        pub use imp::*;
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
    /// Where batch b starts in A, B and C (b times these).
    a_batch: u32,
    b_batch: u32,
    c_batch: u32,
    /// The epilogue ([`Then::code`]; 0: store the product as it is).
    then: u32,
    _pad: [u32; 3],
}

/// Binding numbers of the shader's storage buffers (0 is the uniform block).
mod binding {
    pub const A: u32 = 1;
    pub const B: u32 = 2;
    pub const C: u32 = 3;
    pub const BIAS: u32 = 4;
    pub const AUX: u32 = 5;
    pub const SECOND: u32 = 6;
}

pub(crate) fn run_cpu(op: &Op, i: &[&[f32]], o: &mut [&mut [f32]]) {
    match *op {
        Op::Matmul(spec) => matmul(i[0], i[1], o[0], spec),
        // The product, then the separate ops' twins in their order: the same bits as the unfused layer.
        Op::MatmulThen(spec, then) => match then {
            Then::Bias => {
                matmul(i[0], i[1], o[0], spec);
                add_bias(o[0], i[2]);
            }
            Then::BiasGelu => {
                let [c, pre] = o else { unreachable!() };
                matmul(i[0], i[1], pre, spec);
                add_bias(pre, i[2]);
                gelu_forward(c, pre);
            }
            Then::BiasResidual => {
                matmul(i[0], i[1], o[0], spec);
                add_bias(o[0], i[2]);
                add_residual_in_place(o[0], i[3]);
            }
            Then::GeluBackward => {
                matmul(i[0], i[1], o[0], spec);
                gelu_backward_in_place(o[0], i[2]);
            }
            Then::ColumnSumsOfB => {
                let [c, sums] = o else { unreachable!() };
                matmul(i[0], i[1], c, spec);
                bias_backward(sums, i[1]);
            }
        },
        _ => unreachable!("matmul::run_cpu got {}", op.name()),
    }
}

/// Workgroups a split-K product aims for: enough to fill a GPU's compute units a few times over.
const SPLIT_K_GROUPS: usize = 256;
/// The shortest k-chunk worth a split (below it the second pass costs more than the parallelism saves).
const SPLIT_K_MIN_CHUNK: usize = 128;

/// Into how many k-chunks a product is split on an adapter that splits (`GpuBackend::splits_k`): the largest power
/// of two that keeps its tiles × splits within [`SPLIT_K_GROUPS`], each chunk at least [`SPLIT_K_MIN_CHUNK`] long
/// and dividing k exactly; 1 (no split) for batched products and those that fill the card already. The weight
/// gradients xᵀ·dy (M·N ≤ 256², k = B·T = 4096) are the products this is for: 4–64 tiles.
pub fn k_splits(spec: &MatmulSpec) -> usize {
    k_splits_for(spec, 32)
}

/// [`k_splits`] for a kernel of `tile`×`tile` tiles (32: `main`; 64: `tiled`).
pub fn k_splits_for(spec: &MatmulSpec, tile: usize) -> usize {
    let tiles = spec.m.div_ceil(tile) * spec.n.div_ceil(tile);
    let mut splits = 1;
    while spec.batch == 1 && tiles * splits * 2 <= SPLIT_K_GROUPS && spec.k % (splits * 2) == 0 && spec.k / (splits * 2) >= SPLIT_K_MIN_CHUNK {
        splits *= 2;
    }
    splits
}

/// One 32×32 tile of C per workgroup, batches in z. A product with few tiles and a long k, on an adapter that
/// splits, is two passes: the k-chunks' partial products into a scratch buffer (a batch per chunk), then their sum
/// in a fixed order into C (`reduce_splits`), the same result every run.
///
/// A product with an epilogue ([`Then`]) is never split: its epilogue runs where each value is stored. The column
/// sums of B ([`Then::ColumnSumsOfB`]) are not an epilogue: one more row of workgroups computes them over the whole
/// k, so that product still splits.
pub(crate) fn run_gpu(g: &GpuBackend, op: &Op, t: &[&GpuTensor]) -> Result<()> {
    let (spec, then) = match *op {
        Op::Matmul(spec) => (spec, None),
        Op::MatmulThen(spec, then) => (spec, Some(then)),
        _ => unreachable!("matmul::run_gpu got {}", op.name()),
    };
    // The tiled kernel on hardware GPUs (64×64 tiles through workgroup memory), `main` on software adapters.
    let (entry, tile) = if g.tiled_matmul() { ("matmul.tiled", 64) } else { ("matmul.main", 32) };
    let splits = if g.splits_k() && matches!(then, None | Some(Then::ColumnSumsOfB)) { k_splits_for(&spec, tile) } else { 1 };
    let batches = if splits > 1 { splits } else { spec.batch };
    let column_sums = then == Some(Then::ColumnSumsOfB);
    let groups = [spec.n.div_ceil(tile), spec.m.div_ceil(tile) + column_sums as usize, batches];
    if let Some(n) = groups.iter().find(|&&n| n > g.max_groups()) {
        bail!("matmul: {spec:?} needs {n} workgroups in one dimension; this adapter allows {}", g.max_groups());
    }
    let ((a_row, a_col), (b_row, b_col)) = (spec.a_strides(), spec.b_strides());
    let u = |v: usize| v as u32;
    let (m, n, k) = (spec.m, spec.n, spec.k);
    let mut p = Params {
        batch: u(batches),
        m: u(m),
        n: u(n),
        k: u(k),
        a_row: u(a_row),
        a_col: u(a_col),
        b_row: u(b_row),
        b_col: u(b_col),
        accumulate: spec.accumulate as u32,
        a_batch: u(m * k),
        b_batch: u(k * n),
        c_batch: u(m * n),
        then: then.map_or(0, |then| then.code()),
        _pad: [0; 3],
    };
    // The kernels declare the epilogue's bindings; a dispatch that does not read one binds a placeholder there.
    let (read_unused, write_unused) = (g.unused(false), g.unused(true));
    let (bias, aux, second) = match then {
        None => (&read_unused, &read_unused, &write_unused),
        Some(Then::Bias) => (t[2], &read_unused, &write_unused),
        Some(Then::BiasGelu) => (t[2], &read_unused, t[4]),
        Some(Then::BiasResidual) => (t[2], t[3], &write_unused),
        Some(Then::GeluBackward) => (&read_unused, t[2], &write_unused),
        Some(Then::ColumnSumsOfB) => (&read_unused, &read_unused, t[3]),
    };
    let c = t[t.len() - if matches!(then, Some(Then::BiasGelu | Then::ColumnSumsOfB)) { 2 } else { 1 }];
    let extra = [(binding::BIAS, bias), (binding::AUX, aux), (binding::SECOND, second)];
    if splits == 1 {
        g.dispatch(entry, bytemuck::bytes_of(&p), &[[(binding::A, t[0]), (binding::B, t[1]), (binding::C, c)].as_slice(), &extra].concat(), groups);
        return Ok(());
    }
    let chunk = k / splits;
    p.k = u(chunk);
    p.a_batch = u(chunk * a_col);
    p.b_batch = u(chunk * b_row);
    p.accumulate = 0;
    let partials = g.scratch(splits * m * n);
    g.dispatch(entry, bytemuck::bytes_of(&p), &[[(binding::A, t[0]), (binding::B, t[1]), (binding::C, &partials)].as_slice(), &extra].concat(), groups);
    let sum = Params { m: u(m * n), k: u(splits), accumulate: spec.accumulate as u32, ..p };
    g.launch("matmul.reduce_splits", bytemuck::bytes_of(&sum), &[(binding::A, &partials), (binding::C, t[2])], m * n)
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
    // Split along k where the adapter splits (a weight gradient xᵀ·dy's shape, ragged tiles), plain and accumulating.
    specs.push(MatmulSpec { batch: 1, m: 40, n: 33, k: 1024, a_transposed: true, b_transposed: false, accumulate: false });
    specs.push(MatmulSpec { batch: 1, m: 17, n: 70, k: 512, a_transposed: true, b_transposed: true, accumulate: true });
    specs.push(MatmulSpec { batch: 1, m: 9, n: 12, k: 768, a_transposed: false, b_transposed: false, accumulate: false });
    let mut ops: Vec<Op> = specs.into_iter().map(Op::Matmul).collect();
    // Each epilogue, at a linear layer's transposes (x·W; dy·Wᵀ for GELU's backward), on ragged tiles and on a long k
    // that a plain product of its shape would split.
    for (m, n, k) in [(33, 65, 17), (40, 33, 1024)] {
        for then in [Then::Bias, Then::BiasGelu, Then::BiasResidual] {
            ops.push(Op::MatmulThen(MatmulSpec::new(m, n, k), then));
        }
        ops.push(Op::MatmulThen(MatmulSpec { b_transposed: true, ..MatmulSpec::new(m, n, k) }, Then::GeluBackward));
    }
    // A weight gradient xᵀ·dy (+=) with its bias gradient Σ_rows dy (+=): ragged, and long enough to split.
    for (m, n, k) in [(33, 65, 17), (40, 33, 1024)] {
        ops.push(Op::MatmulThen(MatmulSpec { a_transposed: true, accumulate: true, ..MatmulSpec::new(m, n, k) }, Then::ColumnSumsOfB));
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A product with an epilogue is, on the CPU, the same bits as the product followed by the separate steps the
    /// model ran as ops of their own before they were fused (add the bias, GELU, add to the residual, GELU's
    /// derivative, the bias gradient's column sums): committed results do not move.
    #[test]
    fn an_epilogue_on_the_cpu_is_the_separate_ops_bit_for_bit() {
        use crate::engine::kernels::run_cpu;
        let (m, n, k) = (70, 48, 33);
        let run = |op: Op, ins: &[&[f32]], outs: &mut [Vec<f32>]| {
            let mut o: Vec<&mut [f32]> = outs.iter_mut().map(|v| v.as_mut_slice()).collect();
            run_cpu(&op, ins, &mut o);
        };
        let x = crate::rng::uniform_vec(4, 1, m * k, -2.0, 2.0);
        let w = crate::rng::uniform_vec(4, 2, k * n, -1.0, 1.0);
        let bias = crate::rng::uniform_vec(4, 3, n, -1.0, 1.0);
        let r = crate::rng::uniform_vec(4, 4, m * n, -1.0, 1.0);
        let spec = MatmulSpec::new(m, n, k);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        // The layer as separate steps: y = x·W, y += b, then GELU or the residual.
        let mut y = vec![vec![0.0; m * n]];
        run(Op::Matmul(spec), &[&x, &w], &mut y);
        add_bias(&mut y[0], &bias);
        let mut gelu = vec![vec![0.0; m * n]];
        gelu_forward(&mut gelu[0], &y[0]);
        let sum = vec![r.iter().zip(&y[0]).map(|(r, y)| r + y).collect::<Vec<f32>>()];
        let mut fused = vec![vec![f32::NAN; m * n]];
        run(Op::MatmulThen(spec, Then::Bias), &[&x, &w, &bias], &mut fused);
        assert_eq!(bits(&fused[0]), bits(&y[0]), "bias");
        let mut fused = vec![vec![f32::NAN; m * n], vec![f32::NAN; m * n]];
        run(Op::MatmulThen(spec, Then::BiasGelu), &[&x, &w, &bias], &mut fused);
        assert_eq!((bits(&fused[0]), bits(&fused[1])), (bits(&gelu[0]), bits(&y[0])), "bias and GELU");
        let mut fused = vec![vec![f32::NAN; m * n]];
        run(Op::MatmulThen(spec, Then::BiasResidual), &[&x, &w, &bias, &r], &mut fused);
        assert_eq!(bits(&fused[0]), bits(&sum[0]), "bias and residual");
        // dx = (dy·Wᵀ)·GELU'(pre): the product, then GELU's derivative.
        let back = MatmulSpec { b_transposed: true, ..MatmulSpec::new(m, k, n) };
        let dy = crate::rng::uniform_vec(4, 5, m * n, -1.0, 1.0);
        let pre = crate::rng::uniform_vec(4, 6, m * k, -3.0, 3.0);
        let mut dgelu = vec![vec![0.0; m * k]];
        run(Op::Matmul(back), &[&dy, &w], &mut dgelu);
        let dx = vec![dgelu[0].iter().zip(&pre).map(|(&g, &v)| crate::engine::kernels::elementwise::gelu_grad_times(g, v)).collect::<Vec<f32>>()];
        let mut fused = vec![vec![f32::NAN; m * k]];
        run(Op::MatmulThen(back, Then::GeluBackward), &[&dy, &w, &pre], &mut fused);
        assert_eq!(bits(&fused[0]), bits(&dx[0]), "GELU's backward");
        // dW += xᵀ·dy and db += Σ_rows dy: the accumulating product, then the column sums.
        let grad = MatmulSpec { a_transposed: true, accumulate: true, ..MatmulSpec::new(k, n, m) };
        let (dw0, db0) = (crate::rng::uniform_vec(4, 7, k * n, -1.0, 1.0), crate::rng::uniform_vec(4, 8, n, -1.0, 1.0));
        let mut dw = vec![dw0.clone()];
        run(Op::Matmul(grad), &[&x, &dy], &mut dw);
        let mut db = vec![db0.clone()];
        bias_backward(&mut db[0], &dy);
        let mut fused = vec![dw0, db0];
        run(Op::MatmulThen(grad, Then::ColumnSumsOfB), &[&x, &dy], &mut fused);
        assert_eq!((bits(&fused[0]), bits(&fused[1])), (bits(&dw[0]), bits(&db[0])), "weight and bias gradients");
    }

    /// The fuse probe tells a fused multiply-add from a multiply and an add: natively it follows the build's
    /// FMA (x86-64-v3 here), and a plain f32 multiply then add (what the SIMD128 build does) gives 0.
    #[test]
    fn the_fuse_probe_sees_whether_multiply_adds_round_once() {
        assert_eq!(multiply_add_fuses(), cfg!(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma")));
        let (a, c) = std::hint::black_box((1.0f32 + f32::EPSILON, -(1.0f32 + 2.0 * f32::EPSILON)));
        assert_eq!(a * a + c, 0.0, "rounded twice");
        assert_ne!(a.mul_add(a, c), 0.0, "rounded once");
    }

    /// Both CPU paths (the direct kernel up to 64 columns, matrixmultiply beyond), and the browser's panel kernel
    /// (checked natively on the same lanes' code, 8 lanes wide here, 4 in the browser), against a plain f64 triple
    /// loop: every transpose, rows and columns that are no whole block (6 × 16), k past one pass (256),
    /// accumulating and batched.
    #[test]
    fn both_cpu_paths_match_a_plain_loop() {
        let mut cases = vec![];
        for (m, n, k) in [(1, 1, 1), (7, 17, 3), (13, 64, 300), (6, 16, 256), (40, 44, 9), (5, 65, 70), (11, 130, 600)] {
            for (a_transposed, b_transposed) in [(false, false), (false, true), (true, false), (true, true)] {
                for accumulate in [false, true] {
                    cases.push(MatmulSpec { batch: 1, m, n, k, a_transposed, b_transposed, accumulate });
                }
            }
        }
        cases.push(MatmulSpec { batch: 5, m: 9, n: 16, k: 12, a_transposed: false, b_transposed: true, accumulate: false });
        for spec in cases {
            let a = crate::rng::uniform_vec(3, 1, spec.a_len(), -1.0, 1.0);
            let b = crate::rng::uniform_vec(3, 2, spec.b_len(), -1.0, 1.0);
            let c0 = crate::rng::uniform_vec(3, 3, spec.c_len(), -1.0, 1.0);
            let mut c = c0.clone();
            matmul(&a, &b, &mut c, spec);
            if spec.batch == 1 {
                let mut p = c0.clone();
                panels::product(&a, &b, &mut p, spec);
                let worst = c.iter().zip(&p).map(|(x, y)| (x - y).abs() / (1.0 + x.abs())).fold(0.0f32, f32::max);
                assert!(worst < 1e-5, "{spec:?}: the panel kernel differs by {worst}");
            }
            let MatmulSpec { m, n, k, .. } = spec;
            let ((ars, acs), (brs, bcs)) = (spec.a_strides(), spec.b_strides());
            for p in 0..spec.batch {
                let (a, b) = (&a[p * m * k..], &b[p * k * n..]);
                for i in 0..m {
                    for j in 0..n {
                        let dot: f64 = (0..k).map(|kk| a[i * ars + kk * acs] as f64 * b[kk * brs + j * bcs] as f64).sum();
                        let at = p * m * n + i * n + j;
                        let want = dot + if spec.accumulate { c0[at] as f64 } else { 0.0 };
                        let err = (c[at] as f64 - want).abs() / (1.0 + want.abs());
                        assert!(err < 1e-5, "{spec:?} C[{p}][{i}][{j}] = {} vs {want}", c[at]);
                    }
                }
            }
        }
    }
}
