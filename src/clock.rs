//! Wall-clock milliseconds, natively and in the browser: what the stages and runs time themselves by (their
//! `timings` in results.json, the phases `reproduce` prints) and the bench measures with.

/// Milliseconds since an arbitrary start, monotonic natively (the process's first call), `Date.now()` in the page.
pub fn now_ms() -> f64 {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::OnceLock;
        static START: OnceLock<std::time::Instant> = OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed().as_secs_f64() * 1e3
    }
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Date::now()
    }
}
