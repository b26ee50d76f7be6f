//! Cooperative pause and stop. Long loops await [`yield_point`] once per step. Natively it costs nothing; in
//! the page's Web Worker it awaits a hook the worker installs, which lets the worker read its messages (pause,
//! resume, stop) between steps and keeps a CPU-backend run from starving the worker's event loop.

use crate::error::{Error, Result};

#[cfg(target_arch = "wasm32")]
thread_local! {
    static HOOK: std::cell::RefCell<Option<js_sys::Function>> = const { std::cell::RefCell::new(None) };
}

/// Installs (or removes) the hook: a JS function returning a Promise of `true` to stop, `false` to go on, `"step"` to
/// go on one step and look into it if it is an alignment step ([`request_step_inside`]).
#[cfg(target_arch = "wasm32")]
pub fn set_hook(f: Option<js_sys::Function>) {
    HOOK.with(|h| *h.borrow_mut() = f);
}

/// Natively: a reason every running pipeline stops for at its next step (a failed results write makes
/// further training pointless); set once, first reason kept.
#[cfg(not(target_arch = "wasm32"))]
static ABORT: std::sync::Mutex<Option<Error>> = std::sync::Mutex::new(None);

/// Stops every native pipeline at its next step with `reason` as its error.
#[cfg(not(target_arch = "wasm32"))]
pub fn abort(reason: Error) {
    let mut a = ABORT.lock().unwrap_or_else(|p| p.into_inner());
    a.get_or_insert(reason);
}

/// Pending once, waking itself at once: futures joined with the caller take turns (see `pipeline::join2`).
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if std::mem::replace(&mut self.0, true) {
            return std::task::Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

pub async fn yield_point() -> Result<()> {
    // A turn for any future joined with this one (two runs trained side by side), on every backend.
    YieldOnce(false).await;
    #[cfg(not(target_arch = "wasm32"))]
    if let Some(reason) = ABORT.lock().unwrap_or_else(|p| p.into_inner()).clone() {
        return Err(reason);
    }
    #[cfg(target_arch = "wasm32")]
    {
        let hook = HOOK.with(|h| h.borrow().clone());
        if let Some(f) = hook {
            let js = |e: wasm_bindgen::JsValue| Error::new(format!("control hook: {e:?}"));
            let promise = js_sys::Promise::from(f.call0(&wasm_bindgen::JsValue::NULL).map_err(js)?);
            let answer = wasm_bindgen_futures::JsFuture::from(promise).await.map_err(js)?;
            if answer.as_bool() == Some(true) {
                return Err(Error::stopped());
            }
            if answer.as_string().as_deref() == Some("step") {
                request_step_inside();
            }
        }
    }
    Ok(())
}

// "Step" in the page: the next alignment step is trained as usual and also looked into (`train::align::StepInside`),
// and what it shows goes to the step sink. Both live on the thread that trains (the page's worker; a native test's).
thread_local! {
    static STEP_REQUESTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static STEP_SINK: std::cell::RefCell<Option<Box<dyn FnMut(serde_json::Value)>>> = std::cell::RefCell::new(None);
}

/// Asks for the next alignment step trained on this thread to be looked into.
pub fn request_step_inside() {
    STEP_REQUESTED.with(|s| s.set(true));
}

/// Whether a look into the next step was asked for (and clears the request).
pub fn take_step_request() -> bool {
    STEP_REQUESTED.with(|s| s.replace(false))
}

/// Where looked-into steps go on this thread (none: nowhere).
pub fn set_step_sink(sink: Option<Box<dyn FnMut(serde_json::Value)>>) {
    STEP_SINK.with(|s| *s.borrow_mut() = sink);
}

/// Hands a looked-into step to the sink.
pub fn report_step(step: serde_json::Value) {
    STEP_SINK.with(|s| {
        if let Some(sink) = s.borrow_mut().as_mut() {
            sink(step)
        }
    });
}
