//! Training: batches, the optimiser and schedule, SFT (the alignment losses and loops follow).

pub mod batch;
pub mod losses;
pub mod optim;
pub mod sft;
