//! Tensors and ops behind one interface, with two backends:
//! - `cpu`: plain Rust, the readable reference every kernel is checked against, and the fallback;
//! - `gpu`: wgpu + WGSL (WebGPU in the browser; Vulkan, GL or a software adapter natively).
//!
//! Ops are recorded, not awaited: on the GPU they go into one command encoder that is submitted when a
//! result is read back, so a whole training step costs one submit. Only `read` is async.

pub mod gpu;
pub mod kernels;
pub mod profile;
mod op;

pub use op::Op;

use crate::bail;
use crate::error::{Error, Result};
use serde::Serialize;
use std::cell::RefCell;
use std::str::FromStr;

/// Which backend a run asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// The GPU if an adapter can be had, else the CPU (and say so).
    Auto,
    Gpu,
    Cpu,
}

impl FromStr for BackendChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Self::Auto),
            "gpu" => Ok(Self::Gpu),
            "cpu" => Ok(Self::Cpu),
            other => bail!("backend: '{other}' is not one of auto, gpu, cpu"),
        }
    }
}

/// How to pick a GPU adapter natively (the browser offers just one).
#[derive(Clone, Debug, Default)]
pub struct AdapterRequest {
    /// Ask wgpu for the fallback (software) adapter, e.g. lavapipe.
    pub software: bool,
    /// Take the first adapter whose name contains this text (case-insensitive).
    pub name_contains: Option<String>,
}

/// C[b] = op(A[b]) · op(B[b]) (+ C[b] if `accumulate`), row-major, for b in 0..batch.
/// op(A) is M×K: A is stored M×K, or K×M when `a_transposed`. op(B) is K×N: B is stored K×N, or N×K
/// when `b_transposed`. The backward pass of y = x·W needs dx = dy·Wᵀ and dW = xᵀ·dy (accumulated).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct MatmulSpec {
    pub batch: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a_transposed: bool,
    pub b_transposed: bool,
    pub accumulate: bool,
}

/// What a product does with each value of C before it stores it, so that a linear layer's bias, activation and
/// residual cost no dispatch of their own on a GPU (`Op::MatmulThen`). Batch 1 and overwriting only. On the CPU it is
/// the product, then the same element-wise twins in the same order as the separate ops, so the bits are the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Then {
    /// c = a·b + bias[col]. Inputs after a, b: [bias (n)].
    Bias,
    /// pre = a·b + bias[col], c = gelu(pre). Inputs after a, b: [bias]; outputs [c, pre] (pre for the backward pass).
    BiasGelu,
    /// c = residual + (a·b + bias[col]). Inputs after a, b: [bias, residual (m·n)].
    BiasResidual,
    /// c = (a·b) · gelu'(pre): the backward of [`Then::BiasGelu`]'s activation. Inputs after a, b: [pre (m·n)].
    GeluBackward,
    /// The product as it is (it may accumulate), and sums[col] += Σ_k op(B)[k, col] into a second output (n): a
    /// linear layer's bias gradient Σ_rows dy beside its weight gradient xᵀ·dy. B not transposed.
    ColumnSumsOfB,
}

impl Then {
    /// Its code in the matmul shader's `then` (0 is a plain product).
    pub fn code(&self) -> u32 {
        match self {
            Then::Bias => 1,
            Then::BiasGelu => 2,
            Then::BiasResidual => 3,
            Then::GeluBackward => 4,
            Then::ColumnSumsOfB => 5,
        }
    }
}

impl MatmulSpec {
    /// A plain M×K by K×N product, no batch, no transposes, overwriting C.
    pub fn new(m: usize, n: usize, k: usize) -> Self {
        Self { batch: 1, m, n, k, a_transposed: false, b_transposed: false, accumulate: false }
    }

    pub fn a_len(&self) -> usize {
        self.batch * self.m * self.k
    }
    pub fn b_len(&self) -> usize {
        self.batch * self.k * self.n
    }
    pub fn c_len(&self) -> usize {
        self.batch * self.m * self.n
    }

    /// (row stride, column stride) of op(A) inside one batch of A.
    pub fn a_strides(&self) -> (usize, usize) {
        if self.a_transposed { (1, self.m) } else { (self.k, 1) }
    }
    /// (row stride, column stride) of op(B) inside one batch of B.
    pub fn b_strides(&self) -> (usize, usize) {
        if self.b_transposed { (1, self.k) } else { (self.n, 1) }
    }

    pub fn check(&self, a: usize, b: usize, c: usize) -> Result<()> {
        if self.batch == 0 || self.m == 0 || self.n == 0 || self.k == 0 {
            bail!("matmul: batch, m, n and k must all be ≥ 1, got {self:?}");
        }
        for (name, have, need) in [("A", a, self.a_len()), ("B", b, self.b_len()), ("C", c, self.c_len())] {
            if have != need {
                bail!("matmul: {name} holds {have} values but {self:?} needs exactly {need}");
            }
        }
        Ok(())
    }
}

/// A flat f32 array living on one backend.
pub enum Tensor {
    Cpu(RefCell<Vec<f32>>),
    Gpu(gpu::GpuTensor),
}

impl Tensor {
    pub fn len(&self) -> usize {
        match self {
            Tensor::Cpu(v) => v.borrow().len(),
            Tensor::Gpu(t) => t.len,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Tensors an element-wise op may also visit all at once: a model's parameters, their gradients, AdamW's
/// moments. Each part belongs to a numbered segment (parameters with weight decay, those without). On the GPU
/// the parts lie back to back in one buffer and `segments` views each segment whole, so zeroing the gradients,
/// Σg² and AdamW cost one dispatch a segment instead of one a tensor (85 of a small model's 176 dispatches
/// per step were those). On the CPU a call costs nothing to launch: the parts are separate and `segments` is
/// empty. Packs built from the same lengths and segments have the same layout, which AdamW relies on.
pub struct Packed {
    pub parts: Vec<Tensor>,
    /// Part i's segment.
    pub segment_of: Vec<usize>,
    pub segments: Vec<(usize, Tensor)>,
}

impl Packed {
    /// What an element-wise op over the whole set visits, each with its segment: the segments' views where the
    /// parts are packed (the GPU), else the parts.
    pub fn units(&self) -> Vec<(usize, &Tensor)> {
        if self.segments.is_empty() {
            self.part_units()
        } else {
            self.segments.iter().map(|(s, t)| (*s, t)).collect()
        }
    }

    /// Every part with its segment.
    pub fn part_units(&self) -> Vec<(usize, &Tensor)> {
        self.segment_of.iter().copied().zip(&self.parts).collect()
    }
}

impl std::ops::Deref for Packed {
    type Target = [Tensor];
    fn deref(&self) -> &[Tensor] {
        &self.parts
    }
}

impl<'a> IntoIterator for &'a Packed {
    type Item = &'a Tensor;
    type IntoIter = std::slice::Iter<'a, Tensor>;
    fn into_iter(self) -> Self::IntoIter {
        self.parts.iter()
    }
}

/// The engine a run computes on.
pub enum Engine {
    /// Every op runs its CPU twin (`engine::kernels::<family>`). The twins are the references every WGSL kernel is
    /// tested against, so they favour being obviously right; GEMM goes to a direct kernel or `matrixmultiply`
    /// because a hand-written loop would be 50× slower and no clearer.
    Cpu,
    /// Every op records its WGSL kernel (`shaders/<family>.wgsl`) on the device; routed, like the CPU's, by
    /// [`Engine::run`] through the op's family module.
    Gpu(gpu::GpuBackend),
}

impl Engine {
    pub fn cpu() -> Self {
        Engine::Cpu
    }

    /// Opens the backend asked for. With `Auto`, a missing or failing GPU falls back to the CPU and the
    /// returned note says why; with `Gpu`, it is an error.
    pub async fn open(choice: BackendChoice, request: &AdapterRequest) -> Result<(Engine, Option<String>)> {
        match choice {
            BackendChoice::Cpu => Ok((Engine::cpu(), None)),
            BackendChoice::Gpu => Ok((Engine::Gpu(gpu::GpuBackend::new(request, &kernels::SHADERS).await?), None)),
            BackendChoice::Auto => match gpu::GpuBackend::new(request, &kernels::SHADERS).await {
                // A software rasteriser (lavapipe) runs our kernels several times slower than the CPU backend;
                // asking for it by name or with --software still gets it. (Browsers do not report the type.)
                Ok(g) if cfg!(not(target_arch = "wasm32")) && g.adapter.device_type == "Cpu" && !request.software && request.name_contains.is_none() => {
                    Ok((Engine::cpu(), Some(format!("the only GPU adapter is a software one ({}); the CPU backend is faster", g.adapter.name))))
                }
                Ok(g) => Ok((Engine::Gpu(g), None)),
                Err(e) => Ok((Engine::cpu(), Some(format!("no usable GPU: {e}")))),
            },
        }
    }

    /// One line naming the backend and, for the GPU, the adapter.
    /// What results computed here are identified by: part of every stage and run cache key, results.json's
    /// `backend`, the shipped stages' manifest and the page's "go on from this backend's runs". Two engines with the
    /// same identity give bit-identical results; change it when a kernel change moves results by even a rounding.
    pub fn identity(&self) -> String {
        match self {
            // Named apart: the browser's WebAssembly build (simd128 kernels) and a native one agree to rounding, not bit
            // for bit, so their stages are cached apart.
            // The GEMM is named because results from the kernels before the direct narrow-product kernel agree with
            // these to rounding only.
            // The relaxed-SIMD build whose engine fuses the direct kernel's multiply-adds rounds differently; where
            // the engine does not fuse them it computes exactly what the SIMD128 build does, and is named the same.
            Engine::Cpu if cfg!(target_arch = "wasm32") && kernels::matmul::multiply_add_fuses() => "cpu (WebAssembly SIMD128 + relaxed FMA, 4x8 panel + matrixmultiply GEMM)".to_string(),
            Engine::Cpu if cfg!(target_arch = "wasm32") => "cpu (WebAssembly SIMD128, 4x8 panel + matrixmultiply GEMM)".to_string(),
            Engine::Cpu => "cpu (plain Rust, direct + matrixmultiply GEMM)".to_string(),
            // The clip factor is computed on the device (in f32) since the step is replayed without readbacks: its
            // results agree with earlier GPU results to rounding only.
            // Split-K sums a product's k-chunks in another order than one pass does.
            // The tiled matmul's sums are the register kernel's in the same order, but a shader compiler may contract
            // them differently, so it is named too.
            // Fused attention and epilogues, and the alignment loss on the device (f32), sum in other orders than the
            // separate ops did: results agree with earlier GPU results to rounding only.
            Engine::Gpu(g) => format!(
                "gpu ({} via {}, {}; clip on the device; fused attention and epilogues{}{})",
                g.adapter.name,
                g.adapter.backend,
                g.adapter.device_type,
                if g.splits_k() { "; split-K" } else { "" },
                if g.tiled_matmul() { "; tiled matmul" } else { "" }
            ),
        }
    }

    /// What a person is told this engine is (logs, the self-check and bench reports); free to change wording.
    pub fn describe(&self) -> String {
        match self {
            Engine::Cpu if cfg!(target_arch = "wasm32") && cfg!(target_feature = "relaxed-simd") => {
                format!("the CPU (WebAssembly, relaxed-SIMD build: SIMD128 kernels, multiply-adds {}, one thread)", if kernels::matmul::multiply_add_fuses() { "fused" } else { "not fused by this engine" })
            }
            Engine::Cpu if cfg!(target_arch = "wasm32") => "the CPU (WebAssembly, SIMD128 kernels, one thread)".to_string(),
            Engine::Cpu => "the CPU (native Rust, one thread per seed)".to_string(),
            Engine::Gpu(g) => format!("the GPU {} ({}, {})", g.adapter.name, g.adapter.backend, g.adapter.device_type),
        }
    }

    pub fn is_gpu(&self) -> bool {
        matches!(self, Engine::Gpu(_))
    }

    pub fn tensor(&self, data: &[f32]) -> Tensor {
        match self {
            Engine::Cpu => Tensor::Cpu(RefCell::new(data.to_vec())),
            Engine::Gpu(g) => Tensor::Gpu(g.upload(data)),
        }
    }

    pub fn zeros(&self, len: usize) -> Tensor {
        match self {
            // Not through `tensor`: a zeroed allocation is fresh pages from the system, touched only when
            // written, where copying a zeroed vector wrote every page twice (a forward pass's activations
            // include the backward's buffers, which scoring and sampling never touch).
            Engine::Cpu => Tensor::Cpu(RefCell::new(vec![0.0; len])),
            Engine::Gpu(_) => self.tensor(&vec![0.0; len]),
        }
    }

    /// `values` as a [`Packed`], part i in segment `segment_of[i]`.
    pub fn pack(&self, values: &[&[f32]], segment_of: &[usize]) -> Packed {
        assert_eq!(values.len(), segment_of.len(), "pack: one segment per part");
        if let Engine::Gpu(g) = self {
            if let Some((parts, segments)) = g.upload_packed(values, segment_of) {
                let segments = segments.into_iter().map(|(s, t)| (s, Tensor::Gpu(t))).collect();
                return Packed { parts: parts.into_iter().map(Tensor::Gpu).collect(), segment_of: segment_of.to_vec(), segments };
            }
        }
        Packed { parts: values.iter().map(|v| self.tensor(v)).collect(), segment_of: segment_of.to_vec(), segments: Vec::new() }
    }

    /// Zeroed tensors of `lens` as a [`Packed`].
    pub fn pack_zeros(&self, lens: &[usize], segment_of: &[usize]) -> Packed {
        match self {
            Engine::Cpu => Packed { parts: lens.iter().map(|&n| self.zeros(n)).collect(), segment_of: segment_of.to_vec(), segments: Vec::new() },
            Engine::Gpu(_) => {
                let zeros: Vec<Vec<f32>> = lens.iter().map(|&n| vec![0.0; n]).collect();
                self.pack(&zeros.iter().map(|v| v.as_slice()).collect::<Vec<_>>(), segment_of)
            }
        }
    }

    /// Index tensors (token ids, targets) hold u32 bit patterns in the same 4-byte slots.
    pub fn indices(&self, ids: &[u32]) -> Tensor {
        self.tensor(bytemuck::cast_slice(ids))
    }

    /// Overwrites `t` with `data` (exactly its length), after everything recorded so far: a training loop's inputs
    /// stay in the same buffers step after step, so the GPU's bind groups over them are made once.
    pub fn write(&self, t: &Tensor, data: &[f32]) -> Result<()> {
        if t.len() != data.len() {
            bail!("write: the tensor holds {} values, not {}", t.len(), data.len());
        }
        match (self, t) {
            (Engine::Cpu, Tensor::Cpu(v)) => {
                v.try_borrow_mut().map_err(|_| aliased("write"))?.copy_from_slice(data);
                Ok(())
            }
            (Engine::Gpu(g), Tensor::Gpu(t)) => {
                g.write(t, data);
                Ok(())
            }
            _ => Err(foreign("write")),
        }
    }

    /// [`Engine::write`] of token ids (as [`Engine::indices`] holds them).
    pub fn write_indices(&self, t: &Tensor, ids: &[u32]) -> Result<()> {
        self.write(t, bytemuck::cast_slice(ids))
    }

    pub fn matmul(&self, a: &Tensor, b: &Tensor, c: &Tensor, spec: MatmulSpec) -> Result<()> {
        self.run(Op::Matmul(spec), &[a, b], &[c])
    }

    /// y[r, :] = softmax(x[r, :]) for each of `rows` rows of `cols` values.
    pub fn softmax_rows(&self, x: &Tensor, y: &Tensor, rows: usize, cols: usize) -> Result<()> {
        self.run(Op::SoftmaxRows { rows, cols }, &[x], &[y])
    }

    /// Records `op` reading `ins` and writing `outs` (in the order `Op` documents). Lengths are checked
    /// here, for both backends; an output may not also be an input. While a profile is on, each op is run to
    /// completion and timed.
    pub fn run(&self, op: Op, ins: &[&Tensor], outs: &[&Tensor]) -> Result<()> {
        if let (true, Engine::Gpu(g)) = (profile::in_step(), self) {
            // Timed inside the step: a pass of its own, no wait; its seconds come from the GPU's timestamps.
            g.time_next_op(op.name());
            let done = self.run_op(op, ins, outs);
            g.end_timed_op();
            done?;
            profile::record(&op, 0.0);
            return Ok(());
        }
        if profile::active() {
            let start = crate::clock::now_ms();
            self.run_op(op, ins, outs)?;
            #[cfg(not(target_arch = "wasm32"))]
            if let Engine::Gpu(g) = self {
                g.wait_idle()?;
            }
            profile::record(&op, (crate::clock::now_ms() - start) / 1e3);
            return Ok(());
        }
        self.run_op(op, ins, outs)
    }

    fn run_op(&self, op: Op, ins: &[&Tensor], outs: &[&Tensor]) -> Result<()> {
        op.check(ins, outs)?;
        match self {
            Engine::Cpu => {
                let mut held_in = Vec::with_capacity(ins.len());
                for t in ins {
                    match t {
                        Tensor::Cpu(v) => held_in.push(v.borrow()),
                        Tensor::Gpu(_) => return Err(foreign(op.name())),
                    }
                }
                let mut held_out = Vec::with_capacity(outs.len());
                for t in outs {
                    match t {
                        Tensor::Cpu(v) => held_out.push(v.try_borrow_mut().map_err(|_| aliased(op.name()))?),
                        Tensor::Gpu(_) => return Err(foreign(op.name())),
                    }
                }
                let i: Vec<&[f32]> = held_in.iter().map(|r| r.as_slice()).collect();
                let mut o: Vec<&mut [f32]> = held_out.iter_mut().map(|r| r.as_mut_slice()).collect();
                kernels::run_cpu(&op, &i, &mut o);
                Ok(())
            }
            Engine::Gpu(g) => {
                let mut buffers = Vec::with_capacity(ins.len() + outs.len());
                for t in ins.iter().chain(outs) {
                    match t {
                        Tensor::Gpu(b) => buffers.push(b),
                        Tensor::Cpu(_) => return Err(foreign(op.name())),
                    }
                }
                for (i, o) in outs.iter().enumerate() {
                    if ins.iter().chain(&outs[..i]).any(|t| std::ptr::eq(*t, *o)) {
                        return Err(aliased(op.name()));
                    }
                }
                kernels::run_gpu(g, &op, &buffers)
            }
        }
    }

    /// Copies a tensor back to the host; on the GPU this submits everything recorded so far.
    pub async fn read(&self, t: &Tensor) -> Result<Vec<f32>> {
        match (self, t) {
            (Engine::Cpu, Tensor::Cpu(v)) => Ok(v.borrow().clone()),
            (Engine::Gpu(g), Tensor::Gpu(t)) => g.read(t).await,
            _ => Err(foreign("read")),
        }
    }
}

fn foreign(op: &str) -> Error {
    Error::new(format!("{op}: a tensor belongs to the other backend"))
}

fn aliased(op: &str) -> Error {
    Error::new(format!("{op}: the output tensor is also an input; ops do not work in place"))
}
