//! Writing the current view to SVG, DOT or JSON with the library's
//! renderers (the same drawing `iptviz render` makes, with the groups
//! opened on the canvas open), off the UI thread.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};

use iptviz::graph::view;
use iptviz::layout::Choice;
use iptviz::render::{Format, render};

use crate::scene::{SceneRequest, view_options};
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

/// Renders the view `req` asks for (a table, with the groups opened on the
/// canvas) to text in `format`.
pub fn render_view(doc: &Document, req: &SceneRequest, format: Format) -> Result<String, String> {
    render_rules(doc, &doc.parsed.ruleset, req, format)
}

/// The same with `rs` drawn instead of the document's rules: the same
/// rules with other counters (a capture's, as the canvas shows them).
pub fn render_rules(
    doc: &Document,
    rs: &iptviz::Ruleset,
    req: &SceneRequest,
    format: Format,
) -> Result<String, String> {
    let table = rs
        .tables
        .get(req.table)
        .ok_or_else(|| "no such table".to_string())?;
    let opts = view_options(rs, table, req);
    let v = view(rs, &doc.chain_graph, &opts).map_err(|e| e.to_string())?;
    render(&v, format, Choice::Auto).map_err(|e| e.to_string())
}

/// Renders and writes on a worker thread, with `heat`'s counters when the
/// canvas shows them; the receiver gets the status line to show.
pub fn spawn(
    ctx: &egui::Context,
    doc: Arc<Document>,
    heat: Option<Arc<iptviz::Ruleset>>,
    req: SceneRequest,
    path: String,
) -> Receiver<Result<String, String>> {
    let (tx, rx) = channel();
    let ctx = ctx.clone();
    std::thread::spawn(move || {
        let out = format_for(&path)
            .and_then(|f| {
                let rs = heat.as_deref().unwrap_or(&doc.parsed.ruleset);
                render_rules(&doc, rs, &req, f)
            })
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

    fn request(doc: &Document, table: &str, expanded: &[&str]) -> SceneRequest {
        SceneRequest {
            table: doc
                .parsed
                .ruleset
                .tables
                .iter()
                .position(|t| t.name == table)
                .expect("table"),
            expanded: expanded.iter().map(|s| s.to_string()).collect(),
            expand_all: false,
        }
    }

    #[test]
    fn svg_and_dot_of_a_table_come_from_the_library() {
        let doc = Document::from_bytes("s", include_bytes!("../tests/fixtures/small-host.rules"))
            .expect("loads");
        let req = request(&doc, "filter", &[]);
        let svg = render_view(&doc, &req, Format::Svg).expect("svg");
        assert!(svg.contains("<svg") && svg.contains("ssh-allow"));
        let dot = render_view(&doc, &req, Format::Dot).expect("dot");
        assert!(dot.starts_with("digraph") && dot.contains("ssh-allow"));
    }

    #[test]
    fn export_keeps_the_groups_opened_on_the_canvas() {
        let mut text = String::from("*nat\n:PREROUTING ACCEPT [0:0]\n");
        for i in 0..8 {
            text.push_str(&format!(":KUBE-SEP-ABCDEFGH{i:04} - [0:0]\n"));
            text.push_str(&format!("-A PREROUTING -j KUBE-SEP-ABCDEFGH{i:04}\n"));
        }
        text.push_str("COMMIT\n");
        let doc = Document::from_bytes("k", text.as_bytes()).expect("loads");
        let folded = render_view(&doc, &request(&doc, "nat", &[]), Format::Dot).expect("dot");
        // Members are named in the group's hover text, but get no box.
        let own_box = "[label=\"KUBE-SEP-ABCDEFGH0003";
        assert!(!folded.contains(own_box), "{folded}");
        // The id the canvas uses for that group once opened.
        let scene = crate::scene::Scene::build(
            &doc.parsed.ruleset,
            &doc.chain_graph,
            &request(&doc, "nat", &[]),
        )
        .expect("scene");
        let group = scene.groups.first().expect("a group").id.clone();
        let open =
            render_view(&doc, &request(&doc, "nat", &[group.as_str()]), Format::Dot).expect("dot");
        assert!(open.contains(own_box), "{open}");
    }
}
