//! Cooperative pause and stop. Long loops await [`yield_point`] once per step. Natively it costs nothing; in
//! the page's Web Worker it awaits a hook the worker installs, which lets the worker read its messages (pause,
//! resume, stop) between steps and keeps a CPU-backend run from starving the worker's event loop.

use crate::error::Result;

/// The error a run ends with when the user stops it; the page tells it apart from failures.
pub const STOPPED: &str = "stopped by the user";

#[cfg(target_arch = "wasm32")]
thread_local! {
    static HOOK: std::cell::RefCell<Option<js_sys::Function>> = const { std::cell::RefCell::new(None) };
}

/// Installs (or removes) the hook: a JS function returning a Promise of `true` to stop, `false` to go on.
#[cfg(target_arch = "wasm32")]
pub fn set_hook(f: Option<js_sys::Function>) {
    HOOK.with(|h| *h.borrow_mut() = f);
}

/// Natively: a reason every running pipeline stops for at its next step (a failed results write makes
/// further training pointless); set once, first reason kept.
#[cfg(not(target_arch = "wasm32"))]
static ABORT: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Stops every native pipeline at its next step with `reason` as its error.
#[cfg(not(target_arch = "wasm32"))]
pub fn abort(reason: String) {
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
        return Err(crate::error::Error(reason));
    }
    #[cfg(target_arch = "wasm32")]
    {
        use crate::error::Error;
        let hook = HOOK.with(|h| h.borrow().clone());
        if let Some(f) = hook {
            let js = |e: wasm_bindgen::JsValue| Error(format!("control hook: {e:?}"));
            let promise = js_sys::Promise::from(f.call0(&wasm_bindgen::JsValue::NULL).map_err(js)?);
            let stop = wasm_bindgen_futures::JsFuture::from(promise).await.map_err(js)?;
            if stop.as_bool() == Some(true) {
                return Err(Error(STOPPED.into()));
            }
        }
    }
    Ok(())
}
