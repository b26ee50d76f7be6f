//! Every check a config passes before anything is trained: its settings' ranges and the rules between them
//! ([`super::experiment`]), then each optional arm's ([`super::arms`]). The error names the key at fault.

use super::experiment::ExperimentConfig;
use crate::error::Result;

impl ExperimentConfig {
    /// Every setting against its range (each with its reason), then the settings that constrain each other, then
    /// the arms; the error names the key at fault.
    pub fn validate(&self) -> Result<()> {
        self.check_settings()?;
        super::arms::validate(self)
    }
}
