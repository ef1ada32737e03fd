//! Reading a tree ensemble out of an ONNX file, without ONNX Runtime.
//!
//! ONNX files are protobuf (`onnx.proto`, proto2). We decode only the fields a tree ensemble needs,
//! with prost; every other field is skipped. Source: `ai.onnx.ml` `TreeEnsembleClassifier` as
//! onnxmltools writes it for a LightGBM binary classifier (`scripts/train_gbm.py`).

use anyhow::{bail, Context, Result};
use prost::Message;
use std::collections::HashMap;
use std::path::Path;

/// `ModelProto` (only `graph`, tag 7).
#[derive(Clone, PartialEq, Message)]
struct ModelProto {
    #[prost(message, optional, tag = "7")]
    graph: Option<GraphProto>,
}

/// `GraphProto` (only `node`, tag 1).
#[derive(Clone, PartialEq, Message)]
struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    node: Vec<NodeProto>,
}

/// `NodeProto` (`op_type` 4, `attribute` 5, `domain` 7).
#[derive(Clone, PartialEq, Message)]
struct NodeProto {
    #[prost(string, tag = "4")]
    op_type: String,
    #[prost(message, repeated, tag = "5")]
    attribute: Vec<AttributeProto>,
    #[prost(string, tag = "7")]
    domain: String,
}

/// `AttributeProto` (name 1, f 2, i 3, s 4, floats 7, ints 8, strings 9).
#[derive(Clone, PartialEq, Message)]
struct AttributeProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(float, tag = "2")]
    f: f32,
    #[prost(int64, tag = "3")]
    i: i64,
    #[prost(bytes = "vec", tag = "4")]
    s: Vec<u8>,
    #[prost(float, repeated, tag = "7")]
    floats: Vec<f32>,
    #[prost(int64, repeated, tag = "8")]
    ints: Vec<i64>,
    #[prost(bytes = "vec", repeated, tag = "9")]
    strings: Vec<Vec<u8>>,
}

/// The attributes of a `TreeEnsembleClassifier` node, as parallel arrays (one entry per tree
/// node, and one per leaf weight), exactly as the ONNX operator defines them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TreeEnsembleAttrs {
    pub nodes_treeids: Vec<i64>,
    pub nodes_nodeids: Vec<i64>,
    pub nodes_featureids: Vec<i64>,
    /// Split thresholds, float32 (LightGBM's doubles rounded by the converter).
    pub nodes_values: Vec<f32>,
    /// `BRANCH_LEQ`, `BRANCH_LT`, `BRANCH_GTE`, `BRANCH_GT`, `BRANCH_EQ`, `BRANCH_NEQ` or `LEAF`.
    pub nodes_modes: Vec<String>,
    pub nodes_truenodeids: Vec<i64>,
    pub nodes_falsenodeids: Vec<i64>,
    /// Per node: a missing (NaN) input goes to the true branch; empty = never.
    pub nodes_missing_value_tracks_true: Vec<i64>,
    pub class_treeids: Vec<i64>,
    pub class_nodeids: Vec<i64>,
    pub class_ids: Vec<i64>,
    pub class_weights: Vec<f32>,
    pub classlabels_int64s: Vec<i64>,
    pub base_values: Vec<f32>,
    /// `NONE`, `LOGISTIC`, `SOFTMAX`, …
    pub post_transform: String,
}

impl TreeEnsembleAttrs {
    /// Reads the one `TreeEnsembleClassifier` node of an ONNX file. Errors name the file and what
    /// is missing (no such node, two of them, a protobuf that does not decode).
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read ONNX model {}", path.display()))?;
        Self::decode(&bytes).with_context(|| format!("ONNX model {}", path.display()))
    }

    /// As [`Self::read`], from the file's bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let model = ModelProto::decode(bytes).context("not an ONNX protobuf")?;
        let graph = model.graph.context("no graph")?;
        let mut trees = graph
            .node
            .iter()
            .filter(|n| n.op_type == "TreeEnsembleClassifier" && n.domain == "ai.onnx.ml");
        let node = trees
            .next()
            .context("no ai.onnx.ml TreeEnsembleClassifier node")?;
        if trees.next().is_some() {
            bail!("more than one TreeEnsembleClassifier node");
        }
        let attrs: HashMap<&str, &AttributeProto> = node
            .attribute
            .iter()
            .map(|a| (a.name.as_str(), a))
            .collect();
        let ints = |n: &str| attrs.get(n).map(|a| a.ints.clone()).unwrap_or_default();
        let floats = |n: &str| attrs.get(n).map(|a| a.floats.clone()).unwrap_or_default();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        Ok(Self {
            nodes_treeids: ints("nodes_treeids"),
            nodes_nodeids: ints("nodes_nodeids"),
            nodes_featureids: ints("nodes_featureids"),
            nodes_values: floats("nodes_values"),
            nodes_modes: attrs
                .get("nodes_modes")
                .map(|a| a.strings.iter().map(|s| text(s)).collect())
                .unwrap_or_default(),
            nodes_truenodeids: ints("nodes_truenodeids"),
            nodes_falsenodeids: ints("nodes_falsenodeids"),
            nodes_missing_value_tracks_true: ints("nodes_missing_value_tracks_true"),
            class_treeids: ints("class_treeids"),
            class_nodeids: ints("class_nodeids"),
            class_ids: ints("class_ids"),
            class_weights: floats("class_weights"),
            classlabels_int64s: ints("classlabels_int64s"),
            base_values: floats("base_values"),
            post_transform: attrs
                .get("post_transform")
                .map(|a| text(&a.s))
                .unwrap_or_else(|| "NONE".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-built file (prost encodes the same messages): one stump.
    fn stump_bytes() -> Vec<u8> {
        let ints = |name: &str, v: Vec<i64>| AttributeProto {
            name: name.into(),
            ints: v,
            ..Default::default()
        };
        let floats = |name: &str, v: Vec<f32>| AttributeProto {
            name: name.into(),
            floats: v,
            ..Default::default()
        };
        let node = NodeProto {
            op_type: "TreeEnsembleClassifier".into(),
            domain: "ai.onnx.ml".into(),
            attribute: vec![
                ints("nodes_treeids", vec![0, 0, 0]),
                ints("nodes_nodeids", vec![0, 1, 2]),
                ints("nodes_featureids", vec![3, 0, 0]),
                floats("nodes_values", vec![0.5, 0.0, 0.0]),
                AttributeProto {
                    name: "nodes_modes".into(),
                    strings: vec![b"BRANCH_LEQ".to_vec(), b"LEAF".to_vec(), b"LEAF".to_vec()],
                    ..Default::default()
                },
                ints("nodes_truenodeids", vec![1, 0, 0]),
                ints("nodes_falsenodeids", vec![2, 0, 0]),
                ints("class_treeids", vec![0, 0]),
                ints("class_nodeids", vec![1, 2]),
                ints("class_ids", vec![0, 0]),
                floats("class_weights", vec![-1.0, 2.0]),
                ints("classlabels_int64s", vec![0, 1]),
                AttributeProto {
                    name: "post_transform".into(),
                    s: b"LOGISTIC".to_vec(),
                    ..Default::default()
                },
            ],
        };
        ModelProto {
            graph: Some(GraphProto { node: vec![node] }),
        }
        .encode_to_vec()
    }

    #[test]
    fn decodes_the_tree_attributes_of_a_file() {
        let a = TreeEnsembleAttrs::decode(&stump_bytes()).unwrap();
        assert_eq!(a.nodes_featureids, vec![3, 0, 0]);
        assert_eq!(a.nodes_modes, vec!["BRANCH_LEQ", "LEAF", "LEAF"]);
        assert_eq!(a.class_weights, vec![-1.0, 2.0]);
        assert_eq!(a.post_transform, "LOGISTIC");
        assert!(a.base_values.is_empty());
    }

    #[test]
    fn a_file_without_trees_or_not_protobuf_is_a_clear_error() {
        let empty = ModelProto {
            graph: Some(GraphProto { node: vec![] }),
        }
        .encode_to_vec();
        let e = TreeEnsembleAttrs::decode(&empty).unwrap_err().to_string();
        assert!(e.contains("TreeEnsembleClassifier"), "{e}");
        let e = TreeEnsembleAttrs::decode(b"\xff\xff\xff").unwrap_err();
        assert!(format!("{e:#}").contains("protobuf"), "{e:#}");
    }
}
