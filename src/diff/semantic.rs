//! The seam for the semantic diff: which packets a change treats
//! differently, per hook path, as boxes of packets with an example each.
//!
//! It needs the whole-ruleset packet-set engine (`analysis`), which is not
//! part of this build yet. Until it is, [`semantic_diff`] says so and
//! [`super::RuleDiff::semantic`] stays `None`; the rule diff is complete on
//! its own.

use serde::Serialize;

use crate::model::Ruleset;

/// Which packets change fate between two rulesets. The packet-set engine
/// fills this in; no value of it can be made before then.
#[derive(Debug, Clone, Serialize)]
pub enum SemanticDiff {}

/// Why no semantic diff was computed.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the semantic diff (which packets change fate) needs the packet-set engine, which this build \
     does not have yet; only the rule diff was made"
)]
pub struct SemanticUnavailable;

/// Computes the semantic diff of two rulesets.
pub fn semantic_diff(_old: &Ruleset, _new: &Ruleset) -> Result<SemanticDiff, SemanticUnavailable> {
    Err(SemanticUnavailable)
}
