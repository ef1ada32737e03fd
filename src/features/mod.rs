//! Rolling market features per instrument, in event time.

pub mod chunks;
pub mod lamorgia;
pub mod num;
pub mod window;

pub use chunks::{feature_names, ChunkConfig, ChunkEngine, ChunkRow, N_FEATURES};
pub use window::{ChunkFeatures, FeatureConfig, FeatureSnapshot, FeatureWindow, CHUNK_SECS};
