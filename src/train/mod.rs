//! Training: batches, the optimiser and schedule, SFT (the alignment losses and loops follow).

pub mod align;
pub mod batch;
pub mod data;
pub mod dataset_file;
pub mod eval;
pub mod inspect;
pub mod losses;
pub mod optim;
pub mod parallel;
pub mod pm;
pub mod sft;
