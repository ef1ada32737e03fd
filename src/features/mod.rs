//! Rolling market features per instrument, in event time.

pub mod window;

pub use window::{ChunkFeatures, FeatureConfig, FeatureSnapshot, FeatureWindow, CHUNK_SECS};
