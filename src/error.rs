use std::fmt;

/// Every fallible call in the crate returns this: a message that names the field or shape at fault, and its kind,
/// which is what callers tell errors apart by (the page goes on on the CPU after a lost GPU, and shows a stop as
/// a stop), never the message's text.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

/// What went wrong, as far as a caller acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad input, a failed check, a file that cannot be read: the message says which and why.
    Failed,
    /// The GPU device was lost (a driver reset, a tab in the background too long): the run can go on elsewhere.
    GpuLost,
    /// The user stopped the run.
    Stopped,
}

impl ErrorKind {
    /// Its name where JavaScript reads it (the page's `error.kind`).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Failed => "failed",
            ErrorKind::GpuLost => "gpu_lost",
            ErrorKind::Stopped => "stopped",
        }
    }
}

impl Error {
    /// A failure with its message.
    pub fn new(message: impl Into<String>) -> Error {
        Error { kind: ErrorKind::Failed, message: message.into() }
    }

    /// The GPU device was lost; `detail` says where it was noticed and the driver's reason.
    pub fn gpu_lost(detail: &str) -> Error {
        Error { kind: ErrorKind::GpuLost, message: format!("the GPU device was lost ({detail})") }
    }

    /// The user stopped the run.
    pub fn stopped() -> Error {
        Error { kind: ErrorKind::Stopped, message: "stopped by the user".into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// `bail!("...", args)` returns an `Error` built with `format!`.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => { return Err($crate::error::Error::new(format!($($arg)*))) };
}
