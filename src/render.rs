//! Output formats, one file each: SVG (ours, self-contained), DOT (for
//! graphviz users), JSON (the laid-out graph). `style` holds the visual
//! language shared with the GUI.
//!
//! ```
//! use iptviz::graph::{ChainGraph, ViewOptions, view};
//! use iptviz::layout::{Choice, layout};
//! let text = "*filter\n:INPUT DROP [0:0]\n:SSH - [0:0]\n\
//!             -A INPUT -p tcp -m tcp --dport 22 -j SSH\n-A SSH -j ACCEPT\nCOMMIT\n";
//! let parsed = iptviz::parse_str(text, &iptviz::ParseOptions::lenient("example")).unwrap();
//! let graph = ChainGraph::build(&parsed.ruleset);
//! let v = view(&parsed.ruleset, &graph, &ViewOptions::default()).unwrap();
//! let l = layout(&v, Choice::Auto); // the GUI paints this same layout
//! let svg = iptviz::render::svg::svg(&v, &l);
//! assert!(svg.contains("SSH") && svg.contains("tcp dpt:22"));
//! let dot = iptviz::render::dot::dot(&v);
//! assert!(dot.starts_with("digraph"));
//! ```

pub mod dot;
pub mod json;
pub mod style;
pub mod svg;

use crate::graph::View;
use crate::layout::{self, Choice, Layout};

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Self-contained SVG.
    Svg,
    /// Graphviz DOT.
    Dot,
    /// JSON of the laid-out graph.
    Json,
}

/// Why rendering failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// JSON serialisation failed.
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Lays out (unless the format is DOT) and renders a view.
pub fn render(view: &View, format: Format, choice: Choice) -> Result<String, RenderError> {
    Ok(match format {
        Format::Dot => dot::dot(view),
        Format::Svg => svg::svg(view, &layout::layout(view, choice)),
        Format::Json => json::json(view, &layout::layout(view, choice))?,
    })
}

/// Renders an already laid-out view (SVG or JSON; DOT ignores the layout).
pub fn render_laid_out(view: &View, l: &Layout, format: Format) -> Result<String, RenderError> {
    Ok(match format {
        Format::Dot => dot::dot(view),
        Format::Svg => svg::svg(view, l),
        Format::Json => json::json(view, l)?,
    })
}
