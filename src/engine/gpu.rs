//! The GPU backend: wgpu on WebGPU (browser) or Vulkan/GL (native). Each op records one compute pass into
//! a pending command encoder; `read` submits it, so a step costs one submit however many ops it has.

use super::{AdapterRequest, MatmulSpec, Op};
use crate::bail;
use crate::error::{Error, Result};
use serde::Serialize;
use std::cell::RefCell;
use std::collections::HashMap;
use wgpu::util::DeviceExt;

/// Every kernel: (shader file, its source, entry points). A pipeline is named "file.entry".
const SHADERS: &[(&str, &str, &[&str])] = &[
    ("matmul", include_str!("../../shaders/matmul.wgsl"), &["main"]),
    ("softmax", include_str!("../../shaders/softmax.wgsl"), &["main"]),
    ("embed", include_str!("../../shaders/embed.wgsl"), &["forward", "backward_wte", "backward_wpe"]),
    ("layernorm", include_str!("../../shaders/layernorm.wgsl"), &["forward", "backward_input", "backward_params"]),
    (
        "elementwise",
        include_str!("../../shaders/elementwise.wgsl"),
        &["zero", "add", "add_into", "add_bias", "bias_backward", "gelu_forward", "gelu_backward", "weighted_row_sum", "weighted_row_sum_backward"],
    ),
    ("heads", include_str!("../../shaders/heads.wgsl"), &["split_heads", "merge_heads_qkv", "heads_to_rows", "rows_to_heads"]),
    ("attention", include_str!("../../shaders/attention.wgsl"), &["forward", "backward"]),
    ("logprobs", include_str!("../../shaders/logprobs.wgsl"), &["forward", "backward"]),
    ("adamw", include_str!("../../shaders/adamw.wgsl"), &["main"]),
    ("decode", include_str!("../../shaders/decode.wgsl"), &["embed_position", "cached_attention", "sample_next"]),
    ("sum_squares", include_str!("../../shaders/sum_squares.wgsl"), &["main"]),
    ("kl", include_str!("../../shaders/kl.wgsl"), &["main"]),
    ("score_head", include_str!("../../shaders/score_head.wgsl"), &["forward", "backward_input", "backward_weight"]),
];

/// Threads per workgroup of every 1-D kernel; shaders see it as WORKGROUP_SIZE through the prelude.
const THREADS_PER_GROUP: usize = 64;

/// Helpers every shader shares (thread index, workgroup reductions), prepended to each one.
const PRELUDE: &str = include_str!("../../shaders/prelude.wgsl");

/// A shader's source as compiled: the workgroup size from Rust, the prelude, then the shader.
fn with_prelude(source: &str) -> String {
    format!("const WORKGROUP_SIZE: u32 = {THREADS_PER_GROUP}u;\n{PRELUDE}\n{source}")
}

/// A buffer of f32 on the device.
pub struct GpuTensor {
    pub buffer: wgpu::Buffer,
    pub len: usize,
}

/// What `doctor` and the page's device panel show about an adapter.
#[derive(Clone, Debug, Serialize)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub limits: KeyLimits,
}

/// The limits that bound our kernels and buffers.
#[derive(Clone, Debug, Serialize)]
pub struct KeyLimits {
    pub max_buffer_size: u64,
    pub max_storage_buffer_binding_size: u64,
    pub max_storage_buffers_per_shader_stage: u32,
    pub max_compute_workgroup_storage_size: u32,
    pub max_compute_invocations_per_workgroup: u32,
    pub max_compute_workgroups_per_dimension: u32,
}

impl AdapterSummary {
    pub fn of(adapter: &wgpu::Adapter) -> Self {
        let info = adapter.get_info();
        let l = adapter.limits();
        AdapterSummary {
            // Browsers may withhold the adapter's name (a fingerprinting guard).
            name: if info.name.is_empty() { "unnamed adapter (the browser withholds its name)".to_string() } else { info.name },
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info).trim().to_string(),
            limits: KeyLimits {
                max_buffer_size: l.max_buffer_size,
                max_storage_buffer_binding_size: l.max_storage_buffer_binding_size,
                max_storage_buffers_per_shader_stage: l.max_storage_buffers_per_shader_stage,
                max_compute_workgroup_storage_size: l.max_compute_workgroup_storage_size,
                max_compute_invocations_per_workgroup: l.max_compute_invocations_per_workgroup,
                max_compute_workgroups_per_dimension: l.max_compute_workgroups_per_dimension,
            },
        }
    }
}

pub struct GpuBackend {
    pub adapter: AdapterSummary,
    device: wgpu::Device,
    queue: wgpu::Queue,
    pipelines: HashMap<String, wgpu::ComputePipeline>,
    pending: RefCell<Option<wgpu::CommandEncoder>>,
}

fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::all(),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    })
}

/// Every adapter wgpu can see (native only: a browser exposes one, through `GpuBackend::new`).
#[cfg(not(target_arch = "wasm32"))]
pub async fn list_adapters() -> Vec<AdapterSummary> {
    instance().enumerate_adapters(wgpu::Backends::all()).await.iter().map(AdapterSummary::of).collect()
}

/// True when this browser exposes `navigator.gpu` (in a page or a worker). Without it, wgpu's WebGPU
/// backend cannot start, and asking it would only produce a less clear error.
#[cfg(target_arch = "wasm32")]
pub fn browser_has_webgpu() -> bool {
    let global = js_sys::global();
    js_sys::Reflect::get(&global, &"navigator".into())
        .and_then(|nav| js_sys::Reflect::get(&nav, &"gpu".into()))
        .map(|gpu| !gpu.is_undefined() && !gpu.is_null())
        .unwrap_or(false)
}

async fn pick_adapter(request: &AdapterRequest) -> Result<wgpu::Adapter> {
    #[cfg(target_arch = "wasm32")]
    if !browser_has_webgpu() {
        bail!("this browser does not expose WebGPU (navigator.gpu is missing)");
    }
    let instance = instance();
    #[cfg(not(target_arch = "wasm32"))]
    if let Some(want) = &request.name_contains {
        let want = want.to_lowercase();
        let adapters = instance.enumerate_adapters(wgpu::Backends::all()).await;
        let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
        return adapters
            .into_iter()
            .find(|a| a.get_info().name.to_lowercase().contains(&want))
            .ok_or_else(|| Error(format!("adapter: no adapter name contains '{want}'; found {names:?}")));
    }
    instance
        .request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: request.software,
            ..Default::default()
        })
        .await
        .map_err(|e| {
            let kind = if request.software { "software (fallback) adapter" } else { "GPU adapter" };
            Error(format!("no {kind} found: {e}"))
        })
}

impl GpuBackend {
    pub async fn new(request: &AdapterRequest) -> Result<Self> {
        let adapter = pick_adapter(request).await?;
        let summary = AdapterSummary::of(&adapter);
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("alignment-gap"),
                // Take what the adapter grants (never less than WebGPU's defaults).
                required_limits: adapter.limits(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error(format!("could not open a device on '{}': {e}", summary.name)))?;
        // A shader the adapter rejects must be an error the caller can show, not a panic.
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut pipelines = HashMap::new();
        for (file, source, entries) in SHADERS {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(file),
                source: wgpu::ShaderSource::Wgsl(with_prelude(source).into()),
            });
            for entry in *entries {
                let name = format!("{file}.{entry}");
                let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(&name),
                    layout: None,
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    cache: None,
                });
                pipelines.insert(name, pipeline);
            }
        }
        if let Some(e) = scope.pop().await {
            bail!("the GPU rejected a kernel on '{}': {e}", summary.name);
        }
        Ok(GpuBackend { adapter: summary, device, queue, pipelines, pending: RefCell::new(None) })
    }

    pub fn upload(&self, data: &[f32]) -> GpuTensor {
        // wgpu refuses zero-sized bindings; an empty tensor still gets one (unused) element.
        let padded;
        let contents: &[f32] = if data.is_empty() {
            padded = [0.0f32];
            &padded
        } else {
            data
        };
        let buffer = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(contents),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        });
        GpuTensor { buffer, len: data.len() }
    }

    fn max_groups(&self) -> usize {
        self.adapter.limits.max_compute_workgroups_per_dimension as usize
    }

    /// Records one compute pass of pipeline `name` over `groups`, with a uniform block at binding 0 and
    /// the given (binding, buffer) pairs — exactly the bindings the entry point uses.
    fn dispatch(&self, name: &str, params: &[u32], buffers: &[(u32, &GpuTensor)], groups: [usize; 3]) {
        let pipeline = &self.pipelines[name];
        let mut padded = params.to_vec();
        padded.resize(params.len().div_ceil(4) * 4, 0);
        let uniform = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(&padded),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() }];
        for (binding, t) in buffers {
            entries.push(wgpu::BindGroupEntry { binding: *binding, resource: t.buffer.as_entire_binding() });
        }
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(name),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        let mut pending = self.pending.borrow_mut();
        let encoder = pending.get_or_insert_with(|| self.device.create_command_encoder(&Default::default()));
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(groups[0] as u32, groups[1] as u32, groups[2] as u32);
    }

    /// A 1-D launch of `threads` threads in groups of 64, folded into x and y when it exceeds one
    /// dimension; kernels recover the index as gid.x + gid.y·(groups.x·64).
    fn launch(&self, name: &str, params: &[u32], buffers: &[(u32, &GpuTensor)], threads: usize) -> Result<()> {
        let groups = threads.div_ceil(THREADS_PER_GROUP).max(1);
        let x = groups.min(self.max_groups());
        let y = groups.div_ceil(x);
        if y > self.max_groups() {
            bail!("{name}: {threads} threads exceed this adapter's dispatch limit");
        }
        self.dispatch(name, params, buffers, [x, y, 1]);
        Ok(())
    }

    /// Records `op` on buffers given as inputs then outputs (lengths already checked by `Op::check`),
    /// mapping them onto each kernel's bindings.
    pub fn run(&self, op: &Op, t: &[&GpuTensor]) -> Result<()> {
        let u = |v: usize| v as u32;
        match *op {
            Op::Matmul(spec) => self.matmul(t[0], t[1], t[2], spec),
            Op::SoftmaxRows { rows, cols } => self.softmax_rows(t[0], t[1], rows, cols),
            Op::EmbedForward { n, t: tt, c, vocab, .. } => {
                let p = [u(n), u(tt), u(c), u(vocab)];
                self.launch("embed.forward", &p, &[(1, t[0]), (2, t[1]), (3, t[2]), (4, t[3])], n * c)
            }
            Op::EmbedBackward { n, t: tt, c, vocab, .. } => {
                let p = [u(n), u(tt), u(c), u(vocab)];
                self.launch("embed.backward_wte", &p, &[(1, t[1]), (2, t[2]), (4, t[0])], vocab * c)?;
                self.launch("embed.backward_wpe", &p, &[(3, t[3]), (4, t[0])], tt * c)
            }
            Op::LayernormForward { n, c } => {
                self.launch("layernorm.forward", &[u(n), u(c)], &[(1, t[0]), (2, t[1]), (3, t[2]), (4, t[3]), (5, t[4]), (6, t[5])], n)
            }
            Op::LayernormBackward { n, c } => {
                // ins [dout, x, w, mean, rstd], outs [dx, dw, db]
                let p = [u(n), u(c)];
                self.launch("layernorm.backward_input", &p, &[(1, t[1]), (2, t[2]), (4, t[0]), (5, t[3]), (6, t[4]), (7, t[5])], n)?;
                self.launch("layernorm.backward_params", &p, &[(1, t[1]), (4, t[0]), (5, t[3]), (6, t[4]), (7, t[6]), (8, t[7])], c)
            }
            Op::AddBias { n, c } => self.launch("elementwise.add_bias", &[u(n * c), u(c)], &[(1, t[0]), (3, t[1])], n * c),
            Op::BiasBackward { n, c } => self.launch("elementwise.bias_backward", &[u(n * c), u(c)], &[(1, t[0]), (3, t[1])], c),
            Op::Zero { len } => self.launch("elementwise.zero", &[u(len), 1], &[(3, t[0])], len),
            Op::Add { len } => self.launch("elementwise.add", &[u(len), 1], &[(1, t[0]), (2, t[1]), (3, t[2])], len),
            Op::AddInto { len } => self.launch("elementwise.add_into", &[u(len), 1], &[(1, t[0]), (3, t[1])], len),
            Op::GeluForward { len } => self.launch("elementwise.gelu_forward", &[u(len), 1], &[(1, t[0]), (3, t[1])], len),
            Op::GeluBackward { len } => self.launch("elementwise.gelu_backward", &[u(len), 1], &[(1, t[0]), (2, t[1]), (3, t[2])], len),
            Op::WeightedRowSum { b, t: tt } => self.launch("elementwise.weighted_row_sum", &[u(b), u(tt)], &[(1, t[0]), (2, t[1]), (3, t[2])], b),
            Op::WeightedRowSumBackward { b, t: tt } => {
                self.launch("elementwise.weighted_row_sum_backward", &[u(b * tt), u(tt)], &[(1, t[0]), (2, t[1]), (3, t[2])], b * tt)
            }
            Op::SplitHeads { n, t: tt, h, d } => {
                self.launch("heads.split_heads", &[u(n), u(tt), u(h), u(d)], &[(1, t[0]), (2, t[1]), (3, t[2]), (4, t[3])], n * h * d)
            }
            Op::MergeHeadsQkv { n, t: tt, h, d } => {
                self.launch("heads.merge_heads_qkv", &[u(n), u(tt), u(h), u(d)], &[(2, t[0]), (3, t[1]), (4, t[2]), (1, t[3])], n * h * d)
            }
            Op::HeadsToRows { n, t: tt, h, d } => self.launch("heads.heads_to_rows", &[u(n), u(tt), u(h), u(d)], &[(2, t[0]), (1, t[1])], n * h * d),
            Op::RowsToHeads { n, t: tt, h, d } => self.launch("heads.rows_to_heads", &[u(n), u(tt), u(h), u(d)], &[(1, t[0]), (2, t[1])], n * h * d),
            Op::CausalSoftmaxForward { rows, t: tt, scale } => {
                self.launch("attention.forward", &[u(rows), u(tt), scale.to_bits()], &[(1, t[0]), (2, t[1])], rows)
            }
            Op::CausalSoftmaxBackward { rows, t: tt, scale } => {
                // ins [datt, att], outs [dpre]
                self.launch("attention.backward", &[u(rows), u(tt), scale.to_bits()], &[(3, t[0]), (2, t[1]), (1, t[2])], rows)
            }
            Op::TokenLogprobs { n, v } => self.launch("logprobs.forward", &[u(n), u(v)], &[(1, t[0]), (2, t[1]), (3, t[2])], n),
            Op::TokenLogprobsBackward { n, v } => {
                // ins [dlp, logits, targets], outs [dlogits]
                self.launch("logprobs.backward", &[u(n), u(v)], &[(3, t[0]), (1, t[1]), (2, t[2]), (4, t[3])], n)
            }
            Op::TokenKl { n, v } => self.launch("kl.main", &[u(n), u(v)], &[(1, t[0]), (2, t[1]), (3, t[2])], n),
            Op::ScoreHead { b, t: tt, c } => {
                // ins [lnf, last, w], outs [score]
                self.launch("score_head.forward", &[u(b), u(tt), u(c)], &[(1, t[0]), (2, t[1]), (3, t[2]), (4, t[3])], b)
            }
            Op::ScoreHeadBackward { b, t: tt, c } => {
                // ins [dscore, lnf, last, w], outs [dlnf, dw]
                let p = [u(b), u(tt), u(c)];
                self.launch("score_head.backward_input", &p, &[(1, t[4]), (2, t[2]), (3, t[3]), (4, t[0])], b * tt * c)?;
                self.launch("score_head.backward_weight", &p, &[(2, t[2]), (4, t[0]), (5, t[1]), (6, t[5])], c)
            }
            Op::EmbedPosition { b, c, vocab, context, pos } => {
                let p = [u(b), u(c), u(vocab), u(context), u(pos), 0, 0, 0, 0, 0, 0, 0]; // the whole 48-byte Params block
                self.launch("decode.embed_position", &p, &[(1, t[0]), (2, t[1]), (3, t[2]), (4, t[3])], b * c)
            }
            Op::CachedAttention { b, h, d, context, pos } => {
                let p = [u(b), u(h * d), 0, u(context), u(pos), u(h), u(d), 0, 0, 0, 0, 0];
                self.launch("decode.cached_attention", &p, &[(5, t[0]), (6, t[1]), (7, t[2]), (4, t[3])], b * h)
            }
            Op::SampleNext { b, v, context, pos, temperature, seed, stream, eos, pad } => {
                let p = [u(b), 0, u(v), u(context), u(pos), 0, 0, temperature.to_bits(), seed, stream, eos, pad];
                self.launch("decode.sample_next", &p, &[(8, t[0]), (9, t[1]), (10, t[2]), (11, t[3])], b)
            }
            Op::SumSquares { len, slot, .. } => {
                // One workgroup strides over the whole tensor: gradients here are small, and a single group
                // needs no second reduction pass.
                self.dispatch("sum_squares.main", &[u(len), u(slot)], &[(1, t[0]), (2, t[1])], [1, 1, 1]);
                Ok(())
            }
            Op::Adamw { len, step: h } => {
                let bc1 = 1.0 - h.beta1.powi(h.step as i32);
                let bc2 = 1.0 - h.beta2.powi(h.step as i32);
                let f = |x: f32| x.to_bits();
                let p = [u(len), f(h.lr), f(h.beta1), f(h.beta2), f(h.eps), f(h.weight_decay), f(bc1), f(bc2), f(h.grad_scale)];
                self.launch("adamw.main", &p, &[(1, t[0]), (2, t[1]), (3, t[2]), (4, t[3])], len)
            }
        }
    }

    fn matmul(&self, a: &GpuTensor, b: &GpuTensor, c: &GpuTensor, spec: MatmulSpec) -> Result<()> {
        let groups = [spec.n.div_ceil(32), spec.m.div_ceil(32), spec.batch];
        if let Some(g) = groups.iter().find(|&&g| g > self.max_groups()) {
            bail!("matmul: {spec:?} needs {g} workgroups in one dimension; this adapter allows {}", self.max_groups());
        }
        let (ar, ac) = spec.a_strides();
        let (br, bc) = spec.b_strides();
        let params = [spec.batch, spec.m, spec.n, spec.k, ar, ac, br, bc, spec.accumulate as usize, 0, 0, 0];
        let params: Vec<u32> = params.iter().map(|&v| v as u32).collect();
        self.dispatch("matmul.main", &params, &[(1, a), (2, b), (3, c)], groups);
        Ok(())
    }

    fn softmax_rows(&self, x: &GpuTensor, y: &GpuTensor, rows: usize, cols: usize) -> Result<()> {
        let per_slice = rows.min(self.max_groups());
        let slices = rows.div_ceil(per_slice);
        if slices > self.max_groups() {
            bail!("softmax_rows: {rows} rows exceed this adapter's dispatch limit");
        }
        let params = [rows as u32, cols as u32, per_slice as u32, 0];
        self.dispatch("softmax.main", &params, &[(1, x), (2, y)], [per_slice, slices, 1]);
        Ok(())
    }

    /// Submits what has been recorded (if anything).
    pub fn flush(&self) {
        if let Some(encoder) = self.pending.borrow_mut().take() {
            self.queue.submit([encoder.finish()]);
        }
    }

    pub async fn read(&self, t: &GpuTensor) -> Result<Vec<f32>> {
        let bytes = (t.len.max(1) * 4) as u64;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        {
            let mut pending = self.pending.borrow_mut();
            let encoder = pending.get_or_insert_with(|| self.device.create_command_encoder(&Default::default()));
            encoder.copy_buffer_to_buffer(&t.buffer, 0, &staging, 0, bytes);
        }
        self.flush();
        let (tx, rx) = futures_channel::oneshot::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error(format!("GPU device poll failed: {e}")))?;
        rx.await
            .map_err(|_| Error("GPU readback was dropped (device lost?)".into()))?
            .map_err(|e| Error(format!("GPU readback failed: {e}")))?;
        let view = staging.slice(..).get_mapped_range().map_err(|e| Error(format!("GPU readback: {e}")))?;
        let mut out: Vec<f32> = bytemuck::cast_slice(&view).to_vec();
        out.truncate(t.len);
        Ok(out)
    }
}
