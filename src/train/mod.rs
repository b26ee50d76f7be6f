//! Training: the optimiser and learning-rate schedule (losses and loops follow).

pub mod optim;
