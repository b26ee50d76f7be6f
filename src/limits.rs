//! Allowed ranges of settings, each with the reason for it. Every check names the key, the value it got,
//! the range and why, so a bad setting is refused before anything runs (CLI `--set`, the page's knobs and
//! its URL share these checks).

use crate::bail;
use crate::error::Result;

/// A whole-number setting in `lo..=hi`.
pub fn int(key: &str, v: u64, lo: u64, hi: u64, why: &str) -> Result<()> {
    if v < lo || v > hi {
        bail!("{key} = {v} is out of range {lo}..={hi} ({why})");
    }
    Ok(())
}

/// A real interval; `open_lo`/`open_hi` exclude the ends. NaN and infinities are never inside.
#[derive(Clone, Copy, Debug)]
pub struct Interval {
    pub lo: f32,
    pub hi: f32,
    pub open_lo: bool,
    pub open_hi: bool,
}

impl Interval {
    /// [lo, hi]
    pub const fn closed(lo: f32, hi: f32) -> Self {
        Interval { lo, hi, open_lo: false, open_hi: false }
    }
    /// (lo, hi]
    pub const fn above(lo: f32, hi: f32) -> Self {
        Interval { lo, hi, open_lo: true, open_hi: false }
    }
    /// [lo, hi)
    pub const fn below(lo: f32, hi: f32) -> Self {
        Interval { lo, hi, open_lo: false, open_hi: true }
    }
    pub fn contains(&self, v: f32) -> bool {
        v.is_finite() && (if self.open_lo { v > self.lo } else { v >= self.lo }) && (if self.open_hi { v < self.hi } else { v <= self.hi })
    }
}

impl std::fmt::Display for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}, {}{}", if self.open_lo { "(" } else { "[" }, self.lo, self.hi, if self.open_hi { ")" } else { "]" })
    }
}

/// A real setting inside `range`.
pub fn real(key: &str, v: f32, range: Interval, why: &str) -> Result<()> {
    if !range.contains(v) {
        bail!("{key} = {v} is out of range {range} ({why})");
    }
    Ok(())
}

/// A list setting: between 1 and `max_len` values, each checked by `each`.
pub fn list<T: Copy>(key: &str, values: &[T], max_len: usize, why_len: &str, each: impl Fn(&str, T) -> Result<()>) -> Result<()> {
    if values.is_empty() || values.len() > max_len {
        bail!("{key} holds {} values; it needs 1..={max_len} ({why_len})", values.len());
    }
    for &v in values {
        each(key, v)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_key_value_range_and_reason() {
        let e = real("sft.adamw.lr", 1e30, Interval::above(0.0, 1.0), "why").unwrap_err().message;
        assert_eq!(e, "sft.adamw.lr = 1000000000000000000000000000000 is out of range (0, 1] (why)");
        assert!(real("x", f32::NAN, Interval::closed(0.0, 1.0), "w").is_err());
        assert!(real("x", 0.0, Interval::above(0.0, 1.0), "w").is_err());
        assert!(real("x", 1.0, Interval::below(0.0, 1.0), "w").is_err());
        assert!(real("x", 1.0, Interval::closed(0.0, 1.0), "w").is_ok());
        assert_eq!(int("proxy.eval_every", 0, 1, 10, "w").unwrap_err().message, "proxy.eval_every = 0 is out of range 1..=10 (w)");
        assert!(list("seeds", &[] as &[u32], 4, "w", |_, _| Ok(())).unwrap_err().message.contains("seeds holds 0 values"));
    }
}
