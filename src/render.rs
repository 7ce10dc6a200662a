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
pub mod xml;

use crate::diagram::View;
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
    /// The drawing would have more boxes than anyone can read or a layout
    /// can place in reasonable time.
    #[error(
        "the drawing would have {boxes} boxes, more than {MAX_LAID_OUT} are not laid out: \
         draw part of it (--table, --chain REGEX, --from CHAIN --depth N), keep the default \
         grouping instead of --collapse none, or write DOT (-f dot) for other tools"
    )]
    TooBig {
        /// Boxes of the view.
        boxes: usize,
    },
    /// Writing the output failed.
    #[error("cannot write the drawing")]
    Write(#[from] std::io::Error),
}

/// Largest view (in boxes) that SVG and JSON lay out: a million chains
/// drawn one by one (`--collapse none`) took minutes and gave a 400 MB
/// picture nobody can read.
pub const MAX_LAID_OUT: usize = 100_000;

/// Refuses to lay out a view of more than [`MAX_LAID_OUT`] boxes (DOT is
/// not laid out here, so any size goes).
fn check_size(view: &View, format: Format) -> Result<(), RenderError> {
    if format != Format::Dot && view.nodes.len() > MAX_LAID_OUT {
        return Err(RenderError::TooBig {
            boxes: view.nodes.len(),
        });
    }
    Ok(())
}

/// Lays out (unless the format is DOT) and renders a view.
pub fn render(view: &View, format: Format, choice: Choice) -> Result<String, RenderError> {
    check_size(view, format)?;
    Ok(match format {
        Format::Dot => dot::dot(view),
        Format::Svg => svg::svg(view, &layout::layout(view, choice)),
        Format::Json => json::json(view, &layout::layout(view, choice))?,
    })
}

/// Lays out (unless the format is DOT) and writes a view to `w`: as
/// [`render`], but JSON goes out as it is made instead of as one string.
pub fn render_to(
    view: &View,
    format: Format,
    choice: Choice,
    w: &mut impl std::io::Write,
) -> Result<(), RenderError> {
    if format != Format::Json {
        w.write_all(render(view, format, choice)?.as_bytes())?;
        return Ok(());
    }
    check_size(view, format)?;
    json::write_json(view, &layout::layout(view, choice), w).map_err(|e| {
        if e.is_io() {
            RenderError::Write(e.into())
        } else {
            RenderError::Json(e)
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagram::{ViewOptions, view};
    use crate::graph::ChainGraph;

    fn small_view() -> View {
        let text = "*filter\n:INPUT DROP [0:0]\n:SSH - [0:0]\n\
                    -A INPUT -p tcp -m tcp --dport 22 -j SSH\n-A SSH -j ACCEPT\nCOMMIT\n";
        let parsed = crate::parse_str(text, &crate::ParseOptions::lenient("t")).unwrap();
        let graph = ChainGraph::build(&parsed.ruleset);
        view(&parsed.ruleset, &graph, &ViewOptions::default()).unwrap()
    }

    /// The JSON that `render -f json` streams is the text `render` returns.
    #[test]
    fn json_written_as_it_is_made_is_the_rendered_text() {
        let v = small_view();
        for format in [Format::Json, Format::Svg, Format::Dot] {
            let whole = render(&v, format, Choice::Auto).unwrap();
            let mut streamed = Vec::new();
            render_to(&v, format, Choice::Auto, &mut streamed).unwrap();
            assert_eq!(String::from_utf8(streamed).unwrap(), whole, "{format:?}");
        }
    }

    /// A write error while streaming JSON (the reader of a pipe went away)
    /// keeps its kind, which the CLI reads to end quietly on a closed pipe.
    #[test]
    fn json_streamed_into_a_closed_pipe_keeps_the_io_error() {
        struct Closed;
        impl std::io::Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let err = render_to(&small_view(), Format::Json, Choice::Auto, &mut Closed).unwrap_err();
        match err {
            RenderError::Write(io) => assert_eq!(io.kind(), std::io::ErrorKind::BrokenPipe),
            other => panic!("expected a write error, got {other:?}"),
        }
    }
}
