//! Output formats, one file each: SVG (ours, self-contained), DOT (for
//! graphviz users), JSON (the laid-out graph). `style` holds the visual
//! language shared with the GUI.

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
