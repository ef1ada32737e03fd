//! The learned pre-pump detector: labels, members, stacking, artifacts, training and evaluation.

pub mod artifact;
pub mod config;
pub mod dataset;
pub mod ensemble;
pub mod evaluate;
pub mod explain;
pub mod gbm;
pub mod iforest;
pub mod labels;
pub mod levels;
pub mod linear;
pub mod lockstep;
pub mod metrics;
pub mod onnx;
pub mod train;

pub use config::{DetectorMode, ModelsConfig, TrainConfig};
pub use ensemble::{Ensemble, Scores, MEMBERS};
