//! Per-op timing (`alignment-gap bench --profile`): while on, `Engine::run` runs each op to completion
//! (on a GPU: one submit and a wait per op) and adds its wall time here, by op name. It changes how work
//! is submitted, so profiled step times are slower than the bench's; the shares are what it is for. On a GPU
//! with timestamps, [`start_in_step`] instead times each op inside the real step: ops are recorded as usual,
//! each in a compute pass of its own whose ends write GPU timestamps, nothing waits between them, and the seconds
//! are added from the timestamps after the steps ([`add_seconds`]). It also
//! lists the matmul shapes a step runs (the GEMM bench times each); in the browser that is all it is good for,
//! since its clock counts whole milliseconds there.

use super::{MatmulSpec, Op};
use std::cell::RefCell;

/// One op name's total over the profiled steps.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct OpTime {
    pub name: &'static str,
    pub calls: u64,
    pub seconds: f64,
    /// Multiply-adds ×2 of the matmuls (0 for other ops).
    pub flops: f64,
    /// Bytes the op must read and write at least: each input and output value once.
    pub bytes: f64,
}

/// What a profile collects: per op name its totals, and every matmul's shape with its count of calls.
#[derive(Default)]
struct Collected {
    times: Vec<OpTime>,
    matmuls: Vec<(MatmulSpec, u64)>,
    /// Ops are timed by the GPU's timestamps inside the step, not run to completion one by one.
    in_step: bool,
}

thread_local! {
    static PROFILE: RefCell<Option<Collected>> = const { RefCell::new(None) };
}

/// Starts collecting (clearing anything collected before).
pub fn start() {
    PROFILE.with(|p| *p.borrow_mut() = Some(Collected::default()));
}

/// Starts collecting ops timed inside the step by GPU timestamps (the caller has started the GPU's op timing, and
/// adds each op's seconds with [`add_seconds`] once it has read them).
pub fn start_in_step() {
    PROFILE.with(|p| *p.borrow_mut() = Some(Collected { in_step: true, ..Default::default() }));
}

/// Whether ops are being timed inside the step (see [`start_in_step`]).
pub(crate) fn in_step() -> bool {
    PROFILE.with(|p| p.borrow().as_ref().is_some_and(|c| c.in_step))
}

/// Adds `seconds` to op `name`'s total (the in-step profile's timestamps, read after the steps).
pub fn add_seconds(name: &str, seconds: f64) {
    PROFILE.with(|p| {
        if let Some(t) = p.borrow_mut().as_mut().and_then(|c| c.times.iter_mut().find(|t| t.name == name)) {
            t.seconds += seconds;
        }
    });
}

/// Stops collecting and returns the totals, largest first.
pub fn stop() -> Vec<OpTime> {
    stop_with_matmuls().0
}

/// [`stop`], with the shapes of the matmuls run and how often each (in the order first seen).
pub fn stop_with_matmuls() -> (Vec<OpTime>, Vec<(MatmulSpec, u64)>) {
    let Collected { mut times, matmuls, .. } = PROFILE.with(|p| p.borrow_mut().take()).unwrap_or_default();
    times.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    (times, matmuls)
}

pub(crate) fn active() -> bool {
    PROFILE.with(|p| p.borrow().is_some())
}

pub(crate) fn record(op: &Op, seconds: f64) {
    let products = op.products();
    let flops: f64 = products.iter().map(|s| 2.0 * (s.batch * s.m * s.n * s.k) as f64).sum();
    let (ins, outs) = op.lengths();
    let bytes = 4.0 * ins.iter().chain(&outs).sum::<usize>() as f64;
    PROFILE.with(|p| {
        if let Some(Collected { times, matmuls, .. }) = p.borrow_mut().as_mut() {
            for spec in &products {
                match matmuls.iter_mut().find(|(s, _)| s == spec) {
                    Some((_, calls)) => *calls += 1,
                    None => matmuls.push((*spec, 1)),
                }
            }
            let name = op.name();
            match times.iter_mut().find(|t| t.name == name) {
                Some(t) => {
                    t.calls += 1;
                    t.seconds += seconds;
                    t.flops += flops;
                    t.bytes += bytes;
                }
                None => times.push(OpTime { name, calls: 1, seconds, flops, bytes }),
            }
        }
    });
}
