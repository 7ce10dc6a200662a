//! Writing the current table to SVG or DOT with the library's renderers
//! (the same drawing `iptviz render` makes), off the UI thread.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};

use iptviz::graph::{ChainGraph, ViewOptions, view};
use iptviz::layout::Choice;
use iptviz::render::{Format, render};

use crate::state::Document;

/// The format for a file name, by extension.
pub fn format_for(path: &str) -> Result<Format, String> {
    let lower = path.to_ascii_lowercase();
    if lower.ends_with(".svg") {
        Ok(Format::Svg)
    } else if lower.ends_with(".dot") || lower.ends_with(".gv") {
        Ok(Format::Dot)
    } else if lower.ends_with(".json") {
        Ok(Format::Json)
    } else {
        Err(format!(
            "{path}: choose a name ending in .svg, .dot or .json"
        ))
    }
}

/// Renders `table` of `doc` to text in `format`.
pub fn render_table(doc: &Document, table: &str, format: Format) -> Result<String, String> {
    let rs = &doc.parsed.ruleset;
    let graph = ChainGraph::build(rs);
    let opts = ViewOptions {
        tables: vec![table.to_string()],
        counters: rs.has_counters(),
        ..Default::default()
    };
    let v = view(rs, &graph, &opts).map_err(|e| e.to_string())?;
    render(&v, format, Choice::Auto).map_err(|e| e.to_string())
}

/// Renders and writes on a worker thread; the receiver gets the status
/// line to show.
pub fn spawn(
    ctx: &egui::Context,
    doc: Arc<Document>,
    table: String,
    path: String,
) -> Receiver<Result<String, String>> {
    let (tx, rx) = channel();
    let ctx = ctx.clone();
    std::thread::spawn(move || {
        let out = format_for(&path)
            .and_then(|f| render_table(&doc, &table, f))
            .and_then(|text| {
                std::fs::write(&path, text)
                    .map(|_| format!("wrote {path}"))
                    .map_err(|e| format!("{path}: {e}"))
            });
        // The app may have closed meanwhile; nothing to tell then.
        let _ = tx.send(out);
        ctx.request_repaint();
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_extension() {
        assert_eq!(format_for("a.SVG"), Ok(Format::Svg));
        assert_eq!(format_for("a.dot"), Ok(Format::Dot));
        assert!(format_for("a.png").is_err());
    }

    #[test]
    fn svg_and_dot_of_a_table_come_from_the_library() {
        let doc = Document::from_bytes("s", include_bytes!("../tests/fixtures/small-host.rules"))
            .expect("loads");
        let svg = render_table(&doc, "filter", Format::Svg).expect("svg");
        assert!(svg.contains("<svg") && svg.contains("ssh-allow"));
        let dot = render_table(&doc, "filter", Format::Dot).expect("dot");
        assert!(dot.starts_with("digraph") && dot.contains("ssh-allow"));
    }
}
