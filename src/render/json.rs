//! JSON of the laid-out graph: nodes with boxes and styles, edges with
//! paths, for scripts and other front ends.

use serde::Serialize;

use super::style::{self, EdgeStyle, NodeStyle};
use crate::diagram::{View, ViewEdge, ViewNode};
use crate::layout::{EdgePath, Engine, Layout, NodeBox};

#[derive(Serialize)]
struct Doc<'a> {
    title: &'a str,
    engine: Engine,
    width: f64,
    height: f64,
    clusters: &'a [crate::layout::Cluster],
    nodes: Vec<NodeOut<'a>>,
    edges: Vec<EdgeOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<&'a crate::graph::DiffMarks>,
}

#[derive(Serialize)]
struct NodeOut<'a> {
    #[serde(flatten)]
    node: &'a ViewNode,
    #[serde(rename = "box")]
    bbox: NodeBox,
    style: NodeStyle,
}

#[derive(Serialize)]
struct EdgeOut<'a> {
    #[serde(flatten)]
    edge: &'a ViewEdge,
    path: &'a EdgePath,
    style: EdgeStyle,
}

/// The laid-out view as pretty JSON (deterministic: fields in fixed order).
pub fn json(view: &View, layout: &Layout) -> Result<String, serde_json::Error> {
    let mut out = Vec::new();
    write_json(view, layout, &mut out)?;
    // serde_json writes only valid UTF-8.
    Ok(String::from_utf8(out).expect("JSON is UTF-8"))
}

/// Writes [`json`]'s text to `w` as it is made, so that the document of a
/// cluster-sized view (over 100 MB) is never held whole in memory.
pub fn write_json(
    view: &View,
    layout: &Layout,
    w: &mut impl std::io::Write,
) -> Result<(), serde_json::Error> {
    let empty = EdgePath::default();
    let doc = Doc {
        title: &view.title,
        engine: layout.engine,
        width: layout.width,
        height: layout.height,
        clusters: &layout.clusters,
        nodes: view
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| NodeOut {
                node: n,
                bbox: layout.nodes.get(i).copied().unwrap_or_default(),
                style: style::node_style(n.kind, &n.table),
            })
            .collect(),
        edges: view
            .edges
            .iter()
            .enumerate()
            .map(|(i, e)| EdgeOut {
                edge: e,
                path: layout.edges.get(i).unwrap_or(&empty),
                style: style::edge_style(e.kind, view.nodes[e.to].kind),
            })
            .collect(),
        diff: view.diff.as_ref(),
    };
    serde_json::to_writer_pretty(&mut *w, &doc)?;
    w.write_all(b"\n").map_err(serde_json::Error::io)
}
