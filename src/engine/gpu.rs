//! The GPU backend: wgpu on WebGPU (browser) or Vulkan/GL (native). Ops are recorded as dispatches into one
//! compute pass of a pending command encoder; `read` ends the pass and submits, so a step costs one submit
//! however many ops it has.
//!
//! A training step dispatches the same kernels over the same buffers with the same shapes every step, so nothing
//! a dispatch needs is created twice: uniform blocks are kept by their bytes and bind groups by (pipeline, uniform,
//! buffers), and both are reused until they go unused for [`KEEP_SUBMITS`] submits (then dropped, so that a
//! dropped tensor's memory is not held for long).

use super::AdapterRequest;
use crate::bail;
use crate::error::{Error, Result};
use serde::Serialize;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use wgpu::util::DeviceExt;

/// Threads per workgroup of every 1-D kernel; shaders see it as WORKGROUP_SIZE through the prelude.
const THREADS_PER_GROUP: usize = 64;

/// Helpers every shader shares (thread index, workgroup reductions), prepended to each one.
const PRELUDE: &str = include_str!("../../shaders/prelude.wgsl");

/// A shader's source as compiled: the workgroup size from Rust, the prelude, then the shader.
fn with_prelude(source: &str) -> String {
    format!("const WORKGROUP_SIZE: u32 = {THREADS_PER_GROUP}u;\n{PRELUDE}\n{source}")
}

/// `len` f32 on the device: a whole buffer, or a range of one that holds several tensors (see
/// [`GpuBackend::upload_packed`]).
pub struct GpuTensor {
    pub buffer: wgpu::Buffer,
    /// Where the tensor starts in `buffer`, in bytes (a multiple of the adapter's storage binding alignment).
    pub offset: u64,
    pub len: usize,
}

impl GpuTensor {
    /// The tensor as a binding: its own range of the buffer (an empty tensor still binds its one spare value).
    fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding { buffer: &self.buffer, offset: self.offset, size: wgpu::BufferSize::new(self.len.max(1) as u64 * 4) })
    }
}

/// [`GpuBackend::upload_packed`]'s parts, and its segments' views with their numbers.
pub type PackedUpload = (Vec<GpuTensor>, Vec<(usize, GpuTensor)>);

/// What `doctor` and the page's device panel show about an adapter.
#[derive(Clone, Debug, Serialize)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub limits: KeyLimits,
    /// Whether the adapter can write GPU timestamps at compute passes' ends (`bench --profile` then times each op
    /// inside a real step instead of running each to completion alone).
    #[serde(default)]
    pub timestamps: bool,
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
            timestamps: adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY),
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

/// A WGSL file and its entry points; a pipeline is named "name.entry".
pub struct Shader {
    pub name: &'static str,
    pub source: &'static str,
    pub entries: &'static [&'static str],
}

pub struct GpuBackend {
    pub adapter: AdapterSummary,
    device: wgpu::Device,
    queue: wgpu::Queue,
    /// Every entry point's pipeline, and its place there by name ("family.entry").
    pipelines: Vec<wgpu::ComputePipeline>,
    pipeline_index: HashMap<String, usize>,
    pending: RefCell<Option<Pending>>,
    /// Why the device stopped working (lost, or an error no scope caught: a failed submit), once it has.
    failure: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    /// Uniform blocks by their bytes, with the submit they were last used in.
    uniforms: RefCell<HashMap<Vec<u8>, (wgpu::Buffer, u64)>>,
    /// Bind groups by what they bind, with the submit they were last used in.
    bind_groups: RefCell<HashMap<BindKey, (wgpu::BindGroup, u64)>>,
    counters: Cell<HostCounters>,
    /// Products with few tiles and a long k are split along k (`kernels::matmul::k_splits`): on every adapter but a
    /// software one, where the few tiles already fill the CPU's threads and the second pass only costs.
    splits_k: Cell<bool>,
    /// Matmuls by the tiled kernel (workgroup memory), not the register-blocked one.
    tiled_matmul: Cell<bool>,
    /// Scratch buffers by length (split-K's partial products), reused by every op that needs one of that length.
    scratch: RefCell<HashMap<usize, wgpu::Buffer>>,
    /// One-value buffers for bindings a dispatch does not use (read-only, writable), made on first use.
    unused: RefCell<[Option<wgpu::Buffer>; 2]>,
    /// While ops are timed by GPU timestamps ([`GpuBackend::start_op_timing`]).
    timing: RefCell<Option<OpTiming>>,
}

/// GPU time per op inside a real step: each timed op runs in a compute pass of its own whose beginning and end write
/// a timestamp (WebGPU's `timestamp-query`, pass-level: the same natively and in a browser). Nothing waits between
/// ops, so the step runs as it does unprofiled but for its pass boundaries.
struct OpTiming {
    set: wgpu::QuerySet,
    /// The ops whose pass has opened, in order: op i wrote queries 2i and 2i + 1.
    timed: Vec<&'static str>,
    /// The op announced by `time_next_op` whose pass has not opened yet.
    next: Option<&'static str>,
}

/// At most this many ops are timed between `start_op_timing` and `take_op_times` (two queries each; WebGPU allows
/// 4096 per query set).
const TIMED_OPS: u32 = 2048;

/// Work recorded and not yet submitted: the encoder, and the compute pass open in it (ended before a copy).
/// The pass is declared first so that it is dropped (ended) before its encoder.
struct Pending {
    pass: Option<wgpu::ComputePass<'static>>,
    encoder: wgpu::CommandEncoder,
}

/// What a bind group binds: the pipeline, its uniform block, and each storage binding's buffer range.
#[derive(PartialEq, Eq, Hash)]
struct BindKey {
    pipeline: usize,
    uniform: wgpu::Buffer,
    buffers: Vec<(u32, wgpu::Buffer, u64, usize)>,
}

/// A uniform block or bind group unused for this many submits is dropped (a step has a few submits; one that is
/// used every step stays).
pub const KEEP_SUBMITS: u64 = 8;

/// What the host did for the GPU so far (`bench` prints it per training step): dispatches recorded, the time
/// recording them took, and the objects, submits and readbacks they cost.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct HostCounters {
    pub dispatches: u64,
    /// Host time spent recording dispatches (making or finding their uniform and bind group, encoding them), in
    /// seconds.
    pub record_seconds: f64,
    /// Host time spent submitting them (ending the pass, finishing the encoder, the submit: where wgpu validates
    /// and encodes for the driver), in seconds. Neither includes waiting for the GPU.
    pub submit_seconds: f64,
    pub uniforms_created: u64,
    pub bind_groups_created: u64,
    pub submits: u64,
    pub readbacks: u64,
}

#[cfg(target_arch = "wasm32")]
thread_local! {
    /// The device the worker's last engine opened, for `destroy_current_device`.
    static CURRENT: RefCell<Option<wgpu::Device>> = const { RefCell::new(None) };
}

/// Destroys the worker's current GPU device, as a driver reset or an unplugged GPU would lose it: how the page's test
/// (and a curious visitor, from the console) sees what a run does then. False when there is none.
#[cfg(target_arch = "wasm32")]
pub fn destroy_current_device() -> bool {
    CURRENT.with(|c| c.borrow().as_ref().map(|d| d.destroy()).is_some())
}

impl GpuBackend {
    /// Destroys this engine's device, as a driver reset would lose it (the native test of what a readback says then).
    pub fn lose_device(&self) {
        self.device.destroy();
    }
}

/// Split-K and the tiled matmul by default on every adapter but a software one (wgpu's device type "Cpu":
/// lavapipe, SwiftShader, WARP), where barrier-free kernels and one pass measured fastest.
fn device_type_splits(device_type: &str) -> bool {
    device_type != "Cpu"
}

/// ALIGNMENT_GAP_GPU_MATMUL=tiled|register overrides the matmul kernel the adapter type chooses (bench/gpu.sh
/// times both on a real card); natively only.
fn tiled_by_env() -> Result<Option<bool>> {
    match std::env::var("ALIGNMENT_GAP_GPU_MATMUL").as_deref() {
        Err(_) => Ok(None),
        Ok("tiled") => Ok(Some(true)),
        Ok("register") => Ok(Some(false)),
        Ok(other) => Err(Error::new(format!("ALIGNMENT_GAP_GPU_MATMUL = '{other}' is not one of tiled, register"))),
    }
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
            .ok_or_else(|| Error::new(format!("adapter: no adapter name contains '{want}'; found {names:?}")));
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
            Error::new(format!("no {kind} found: {e}"))
        })
}

impl GpuBackend {
    pub async fn new(request: &AdapterRequest, shaders: &[Shader]) -> Result<Self> {
        let adapter = pick_adapter(request).await?;
        let summary = AdapterSummary::of(&adapter);
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("alignment-gap"),
                // Take what the adapter grants (never less than WebGPU's defaults).
                required_limits: adapter.limits(),
                // Timestamps where the adapter has them (the in-step profile); nothing else beyond WebGPU's core.
                required_features: adapter.features() & wgpu::Features::TIMESTAMP_QUERY,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::new(format!("could not open a device on '{}': {e}", summary.name)))?;
        // A shader the adapter rejects must be an error the caller can show, not a panic.
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let (mut pipelines, mut pipeline_index) = (Vec::new(), HashMap::new());
        for shader in shaders {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(shader.name),
                source: wgpu::ShaderSource::Wgsl(with_prelude(shader.source).into()),
            });
            for entry in shader.entries {
                let name = format!("{}.{entry}", shader.name);
                let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(&name),
                    layout: None,
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    cache: None,
                });
                pipeline_index.insert(name, pipelines.len());
                pipelines.push(pipeline);
            }
        }
        if let Some(e) = scope.pop().await {
            bail!("the GPU rejected a kernel on '{}': {e}", summary.name);
        }
        let failure = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
        let note = |failure: &std::sync::Arc<std::sync::Mutex<Option<String>>>, what: String| {
            failure.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(what);
        };
        let lost = failure.clone();
        device.set_device_lost_callback(move |reason, message| note(&lost, format!("{reason:?}: {message}")));
        // An error no scope caught means a submit failed: the run stops at its next readback with it (wgpu's default
        // would panic).
        let failed = failure.clone();
        device.on_uncaptured_error(std::sync::Arc::new(move |e: wgpu::Error| note(&failed, format!("a submit failed: {e}"))));
        #[cfg(target_arch = "wasm32")]
        CURRENT.with(|c| *c.borrow_mut() = Some(device.clone()));
        let splits = device_type_splits(&summary.device_type);
        let tiled = tiled_by_env()?.unwrap_or(splits);
        Ok(GpuBackend {
            adapter: summary,
            device,
            queue,
            pipelines,
            pipeline_index,
            pending: RefCell::new(None),
            failure,
            uniforms: RefCell::default(),
            bind_groups: RefCell::default(),
            counters: Cell::default(),
            splits_k: Cell::new(splits),
            tiled_matmul: Cell::new(tiled),
            scratch: RefCell::default(),
            unused: RefCell::default(),
            timing: RefCell::default(),
        })
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
        GpuTensor { buffer, offset: 0, len: data.len() }
    }

    /// Uploads `values` into one buffer, segment by segment (`segment_of[i]` is part i's segment, counted from
    /// 0), each part starting on the storage binding alignment, the gaps zero. Returns the parts in the order
    /// given and a view of each non-empty segment (with its number) from its first part to the end of its last, so that an element-wise op
    /// over a segment (zeroing gradients, AdamW, Σg²) is one dispatch instead of one per tensor. Ops over a
    /// segment see its gaps too; zeros there stay zeros under each of those ops. None when the whole would
    /// not fit one binding (then the caller keeps separate buffers).
    pub fn upload_packed(&self, values: &[&[f32]], segment_of: &[usize]) -> Option<PackedUpload> {
        let align = (self.device.limits().min_storage_buffer_offset_alignment as usize / 4).max(1);
        let segments = segment_of.iter().max().map_or(0, |&s| s + 1);
        let mut starts = vec![0usize; values.len()];
        let mut ranges = Vec::with_capacity(segments);
        let mut end = 0usize;
        for s in 0..segments {
            let first = end;
            for (i, v) in values.iter().enumerate().filter(|(i, _)| segment_of[*i] == s) {
                starts[i] = end;
                end = (end + v.len().max(1)).div_ceil(align) * align;
            }
            ranges.push((first, end));
        }
        if end == 0 || end as u64 * 4 > self.device.limits().max_storage_buffer_binding_size {
            return None;
        }
        let mut flat = vec![0.0f32; end];
        for (v, &at) in values.iter().zip(&starts) {
            flat[at..at + v.len()].copy_from_slice(v);
        }
        let buffer = self.upload(&flat).buffer;
        let view = |at: usize, len: usize| GpuTensor { buffer: buffer.clone(), offset: at as u64 * 4, len };
        let parts = values.iter().zip(&starts).map(|(v, &at)| view(at, v.len())).collect();
        let whole = ranges.into_iter().enumerate().filter(|(_, (a, b))| b > a).map(|(s, (a, b))| (s, view(a, b - a))).collect();
        Some((parts, whole))
    }

    /// Whether products with few tiles and a long k are split along k on this engine.
    pub fn splits_k(&self) -> bool {
        self.splits_k.get()
    }

    /// Turns split-K on or off (the self-check runs both on every adapter; results differ by rounding).
    pub fn set_splits_k(&self, on: bool) {
        self.splits_k.set(on);
    }

    /// Whether matmuls run the tiled kernel (workgroup memory; hardware GPUs) rather than the register-blocked one.
    pub fn tiled_matmul(&self) -> bool {
        self.tiled_matmul.get()
    }

    /// Chooses the matmul kernel (the self-check runs both on every adapter).
    pub fn set_tiled_matmul(&self, on: bool) {
        self.tiled_matmul.set(on);
    }

    /// A scratch tensor of `len` values, the same buffer for every caller of that length: its contents are the last
    /// writer's (ops that use one write it before they read it, within their own dispatches).
    pub(crate) fn scratch(&self, len: usize) -> GpuTensor {
        let buffer = self.scratch.borrow_mut().entry(len).or_insert_with(|| self.upload(&vec![0.0; len]).buffer).clone();
        GpuTensor { buffer, offset: 0, len }
    }

    /// A one-value buffer for a binding an entry point declares but this dispatch does not read or write (a plain
    /// product's epilogue bindings). Writable ones are another buffer than read-only ones: one buffer may not be
    /// bound both ways in one dispatch.
    pub(crate) fn unused(&self, writable: bool) -> GpuTensor {
        let buffer = self.unused.borrow_mut()[writable as usize].get_or_insert_with(|| self.upload(&[0.0]).buffer).clone();
        GpuTensor { buffer, offset: 0, len: 1 }
    }

    /// Threads per workgroup of every 1-D kernel (WORKGROUP_SIZE in the shaders).
    pub(crate) fn threads_per_group(&self) -> usize {
        THREADS_PER_GROUP
    }

    pub(crate) fn max_groups(&self) -> usize {
        self.adapter.limits.max_compute_workgroups_per_dimension as usize
    }

    /// Records one compute pass of pipeline `name` over `groups`, with the uniform block `params` (a
    /// family's `Params` as bytes) at binding 0 and the given (binding, buffer) pairs — exactly the
    /// bindings the entry point uses.
    pub(crate) fn dispatch(&self, name: &str, params: &[u8], buffers: &[(u32, &GpuTensor)], groups: [usize; 3]) {
        let start = crate::clock::now_ms();
        let mut counters = self.counters.get();
        let submit = counters.submits;
        let index = self.pipeline_index[name];
        let pipeline = &self.pipelines[index];
        // Uniform blocks are a few words: padded to 16 bytes on the stack, copied to the heap only when new.
        let mut padded = [0u8; 256];
        assert!(params.len() <= padded.len(), "{name}: a uniform block of {} bytes (at most 256)", params.len());
        let padded = &mut padded[..params.len().div_ceil(16) * 16];
        padded[..params.len()].copy_from_slice(params);
        let uniform = {
            let mut uniforms = self.uniforms.borrow_mut();
            match uniforms.get_mut(&padded[..]) {
                Some((buffer, used)) => {
                    *used = submit;
                    buffer.clone()
                }
                None => {
                    counters.uniforms_created += 1;
                    let buffer = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: None, contents: padded, usage: wgpu::BufferUsages::UNIFORM });
                    uniforms.insert(padded.to_vec(), (buffer.clone(), submit));
                    buffer
                }
            }
        };
        let key = BindKey { pipeline: index, uniform, buffers: buffers.iter().map(|(b, t)| (*b, t.buffer.clone(), t.offset, t.len)).collect() };
        let mut bind_groups = self.bind_groups.borrow_mut();
        let (bind_group, used) = bind_groups.entry(key).or_insert_with_key(|key| {
            counters.bind_groups_created += 1;
            let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: key.uniform.as_entire_binding() }];
            for (binding, t) in buffers {
                entries.push(wgpu::BindGroupEntry { binding: *binding, resource: t.binding() });
            }
            let group = self.device.create_bind_group(&wgpu::BindGroupDescriptor { label: Some(name), layout: &pipeline.get_bind_group_layout(0), entries: &entries });
            (group, submit)
        });
        *used = submit;
        let mut pending = self.pending.borrow_mut();
        let pending = pending.get_or_insert_with(|| Pending { encoder: self.device.create_command_encoder(&Default::default()), pass: None });
        // One pass for every dispatch until a copy or a submit: WebGPU orders dispatches within a pass and makes
        // each one's writes visible to the next, as it does across passes.
        let pass = pending.pass.get_or_insert_with(|| {
            // A timed op's first dispatch opens its pass with timestamps at both ends.
            let mut timing = self.timing.borrow_mut();
            let timed = timing.as_mut().and_then(|t| {
                let name = t.next.take()?;
                let i = t.timed.len() as u32;
                (i < TIMED_OPS).then(|| {
                    t.timed.push(name);
                    (&t.set, i)
                })
            });
            let timestamp_writes = timed.map(|(query_set, i)| wgpu::ComputePassTimestampWrites {
                query_set,
                beginning_of_pass_write_index: Some(2 * i),
                end_of_pass_write_index: Some(2 * i + 1),
            });
            pending.encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes }).forget_lifetime()
        });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &*bind_group, &[]);
        pass.dispatch_workgroups(groups[0] as u32, groups[1] as u32, groups[2] as u32);
        counters.dispatches += 1;
        counters.record_seconds += (crate::clock::now_ms() - start) / 1e3;
        self.counters.set(counters);
    }

    /// Starts timing ops by GPU timestamps, if the adapter has them (false if not: the caller times ops another way).
    pub fn start_op_timing(&self) -> bool {
        if !self.adapter.timestamps {
            return false;
        }
        let set = self.device.create_query_set(&wgpu::QuerySetDescriptor { label: Some("op timing"), ty: wgpu::QueryType::Timestamp, count: 2 * TIMED_OPS });
        *self.timing.borrow_mut() = Some(OpTiming { set, timed: Vec::new(), next: None });
        true
    }

    /// While timing: the next op (`name`) gets a compute pass of its own.
    pub fn time_next_op(&self, name: &'static str) {
        if let Some(t) = self.timing.borrow_mut().as_mut() {
            self.end_pass();
            t.next = Some(name);
        }
    }

    /// While timing: the op just recorded ends its pass.
    pub fn end_timed_op(&self) {
        if let Some(t) = self.timing.borrow_mut().as_mut() {
            t.next = None;
            self.end_pass();
        }
    }

    fn end_pass(&self) {
        if let Some(p) = self.pending.borrow_mut().as_mut() {
            p.pass = None;
        }
    }

    /// Stops timing and reads the timestamps back: each timed op's GPU seconds, in the order the ops ran.
    pub async fn take_op_times(&self) -> Result<Vec<(&'static str, f64)>> {
        let Some(t) = self.timing.borrow_mut().take() else { return Ok(vec![]) };
        let queries = 2 * t.timed.len() as u32;
        if queries == 0 {
            return Ok(vec![]);
        }
        let bytes = queries as u64 * 8;
        let resolved = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamps"),
            size: bytes,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        self.encoder().resolve_query_set(&t.set, 0..queries, &resolved, 0);
        // Each timestamp is a u64 of ticks: two f32 words of bits, read back as any tensor is.
        let words = self.read(&GpuTensor { buffer: resolved, offset: 0, len: 2 * queries as usize }).await?;
        let ticks: &[u64] = bytemuck::cast_slice(&words);
        let period = self.queue.get_timestamp_period() as f64 * 1e-9;
        Ok(t.timed.iter().zip(ticks.chunks_exact(2)).map(|(&name, pair)| (name, pair[1].saturating_sub(pair[0]) as f64 * period)).collect())
    }

    /// Overwrites `t` with `data` after everything recorded so far: the recorded work is submitted first, because a
    /// queued write lands before the next submit, not where it is called.
    pub fn write(&self, t: &GpuTensor, data: &[f32]) {
        self.flush();
        if !data.is_empty() {
            self.queue.write_buffer(&t.buffer, t.offset, bytemuck::cast_slice(data));
        }
    }

    /// What the host has done for the GPU since this engine opened.
    pub fn counters(&self) -> HostCounters {
        self.counters.get()
    }

    /// The pending encoder with no pass open in it (a copy is recorded outside passes).
    fn encoder(&self) -> std::cell::RefMut<'_, wgpu::CommandEncoder> {
        let mut pending = self.pending.borrow_mut();
        let p = pending.get_or_insert_with(|| Pending { encoder: self.device.create_command_encoder(&Default::default()), pass: None });
        p.pass = None;
        std::cell::RefMut::map(pending, |p| &mut p.as_mut().expect("just made").encoder)
    }

    /// A 1-D launch of `threads` threads in groups of 64, folded into x and y when it exceeds one
    /// dimension; kernels recover the index as gid.x + gid.y·(groups.x·64).
    pub(crate) fn launch(&self, name: &str, params: &[u8], buffers: &[(u32, &GpuTensor)], threads: usize) -> Result<()> {
        let groups = threads.div_ceil(THREADS_PER_GROUP).max(1);
        let x = groups.min(self.max_groups());
        let y = groups.div_ceil(x);
        if y > self.max_groups() {
            bail!("{name}: {threads} threads exceed this adapter's dispatch limit");
        }
        self.dispatch(name, params, buffers, [x, y, 1]);
        Ok(())
    }

    /// Submits what has been recorded and waits until the device has run it (per-op profiling).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn wait_idle(&self) -> Result<()> {
        self.flush();
        self.device.poll(wgpu::PollType::wait_indefinitely()).map(|_| ()).map_err(|e| Error::new(format!("GPU device poll failed: {e}")))
    }

    /// Submits what has been recorded (if anything), and drops the uniforms and bind groups that went unused for
    /// [`KEEP_SUBMITS`] submits.
    pub fn flush(&self) {
        if let Some(Pending { encoder, pass }) = self.pending.borrow_mut().take() {
            let start = crate::clock::now_ms();
            drop(pass);
            self.queue.submit([encoder.finish()]);
            let mut counters = self.counters.get();
            counters.submits += 1;
            counters.submit_seconds += (crate::clock::now_ms() - start) / 1e3;
            self.counters.set(counters);
            let now = counters.submits;
            self.uniforms.borrow_mut().retain(|_, (_, used)| used.saturating_add(KEEP_SUBMITS) >= now);
            self.bind_groups.borrow_mut().retain(|_, (_, used)| used.saturating_add(KEEP_SUBMITS) >= now);
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
        self.encoder().copy_buffer_to_buffer(&t.buffer, t.offset, &staging, 0, bytes);
        self.flush();
        let mut counters = self.counters.get();
        counters.readbacks += 1;
        self.counters.set(counters);
        let (tx, rx) = futures_channel::oneshot::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::new(format!("GPU device poll failed: {e}")))?;
        let failed = |what: String| {
            let why = self.failure.lock().unwrap_or_else(|p| p.into_inner()).clone();
            // Its own kind (`ErrorKind::GpuLost`): a run that ends with it keeps its checkpoints and can go on on the CPU.
            Error::gpu_lost(&format!("{}; {what}", why.unwrap_or_else(|| "no reason given".into())))
        };
        rx.await.map_err(|_| failed("its readback was dropped".into()))?.map_err(|e| failed(format!("a readback failed: {e}")))?;
        if self.failure.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
            return Err(failed("a readback after it".into()));
        }
        let view = staging.slice(..).get_mapped_range().map_err(|e| Error::new(format!("GPU readback: {e}")))?;
        let mut out: Vec<f32> = bytemuck::cast_slice(&view).to_vec();
        out.truncate(t.len);
        Ok(out)
    }
}
